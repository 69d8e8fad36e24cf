using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Carml.Orleans.Tests.Security;

/// <summary>Hostile input at the front door: bad header bytes, huge headers, JSON nested to exhaust a parser: all 4xx.</summary>
[Collection(SecuredGatewayCollection.Name)]
public sealed class AttackTests(SecuredGatewayFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("X-Api-Key: carml_0123456789abcdef_\u0001secret")]
    [InlineData("Authorization: Bearer a\u0000b")]
    [InlineData("X-Note: bell\u0007")]
    public async Task Headers_with_control_characters_are_refused_with_400(string header)
    {
        // HttpClient refuses to send such headers, so speak HTTP/1.1 over a socket.
        var status = await RawRequestAsync($"GET /api/models HTTP/1.1\r\nHost: localhost\r\n{header}\r\nConnection: close\r\n\r\n");

        Assert.Equal(400, status);
    }

    [Fact]
    public async Task An_http1_request_claiming_a_grpc_content_type_is_refused_with_a_plain_401()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/iris/infer")
        {
            Content = new ByteArrayContent([0, 0, 0, 0, 0]),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");

        using var response = await fixture.Client(null).SendAsync(request, Ct);

        // Proxies and access logs must see the refusal, not a 200 carrying a grpc-status header.
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.False(response.Headers.Contains("grpc-status"));
    }

    [Fact]
    public async Task Huge_headers_are_refused_with_431()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/models");
        request.Headers.TryAddWithoutValidation("X-Padding", new string('a', 64 * 1024));

        using var response = await fixture.As("admin").SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
    }

    [Theory]
    [InlineData("/v2/models/iris/infer")]
    [InlineData("/api/keys")]
    [InlineData("/api/evaluations")]
    [InlineData("/api/predictors")]
    public async Task Deeply_nested_json_is_a_400_not_a_500(string path)
    {
        const int depth = 5000;
        var nested = new string('[', depth) + "1" + new string(']', depth);
        var body = path.StartsWith("/v2", StringComparison.Ordinal)
            ? $$"""{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": {{nested}}}]}"""
            : $$"""{"user": {{nested}}, "model": {{nested}}}""";

        using var response = await fixture.As("admin").PostJsonAsync(path, body);

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest,
            $"{path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
    }

    private async Task<int> RawRequestAsync(string request)
    {
        var uri = fixture.Gateway.Http.BaseAddress!;
        using var client = new TcpClient();
        await client.ConnectAsync(uri.Host, uri.Port, Ct);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes(request), Ct);
        using var reader = new StreamReader(stream, Encoding.Latin1);
        var statusLine = await reader.ReadLineAsync(Ct) ?? throw new InvalidOperationException("The server closed the connection without a status line.");
        return int.Parse(statusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}

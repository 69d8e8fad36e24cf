using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace Carml.Orleans.Tests;

/// <summary>The tus 1.0.0 protocol, spoken in raw HTTP against the real gateway.</summary>
[Collection(GatewayCollection.Name)]
public sealed class TusUploadTests(GatewayFixture fixture)
{
    private HttpClient Http => fixture.Gateway.Http;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static HttpRequestMessage Tus(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("Tus-Resumable", "1.0.0");
        return request;
    }

    internal static async Task<string> CreateAsync(HttpClient http, long? length, string? metadata = null)
    {
        using var request = Tus(HttpMethod.Post, "/api/uploads");
        if (length is { } l)
        {
            request.Headers.Add("Upload-Length", l.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        else
        {
            request.Headers.Add("Upload-Defer-Length", "1");
        }

        if (metadata is not null)
        {
            request.Headers.Add("Upload-Metadata", metadata);
        }

        using var response = await http.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return response.Headers.Location!.OriginalString;
    }

    internal static async Task<HttpResponseMessage> PatchAsync(HttpClient http, string location, long offset, byte[] body, string? checksum = null, long? length = null)
    {
        var request = Tus(HttpMethod.Patch, location);
        request.Headers.Add("Upload-Offset", offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (checksum is not null)
        {
            request.Headers.Add("Upload-Checksum", checksum);
        }

        if (length is { } l)
        {
            request.Headers.Add("Upload-Length", l.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        request.Content = new ByteArrayContent(body);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/offset+octet-stream");
        return await http.SendAsync(request, Ct);
    }

    internal static async Task<long> OffsetAsync(HttpClient http, string location)
    {
        using var response = await http.SendAsync(Tus(HttpMethod.Head, location), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return long.Parse(response.Headers.GetValues("Upload-Offset").Single(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static string Meta(params (string Key, string Value)[] pairs) =>
        string.Join(",", pairs.Select(p => $"{p.Key} {Convert.ToBase64String(Encoding.UTF8.GetBytes(p.Value))}"));

    [Fact]
    public async Task Options_advertises_version_extensions_size_and_checksums()
    {
        using var response = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Options, "/api/uploads"), Ct);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("1.0.0", response.Headers.GetValues("Tus-Version").Single());
        var extensions = response.Headers.GetValues("Tus-Extension").Single().Split(',');
        Assert.Equal(["creation", "creation-with-upload", "creation-defer-length", "termination", "expiration", "checksum"], extensions);
        Assert.True(long.Parse(response.Headers.GetValues("Tus-Max-Size").Single(), System.Globalization.CultureInfo.InvariantCulture) > 0);
        Assert.Equal("sha1,sha256", response.Headers.GetValues("Tus-Checksum-Algorithm").Single());
    }

    [Fact]
    public async Task Browser_preflight_gets_cors_headers()
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, "/api/uploads");
        request.Headers.Add("Origin", "http://example.test");
        request.Headers.Add("Access-Control-Request-Method", "PATCH");

        using var response = await Http.SendAsync(request, Ct);

        Assert.Equal("*", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("PATCH", response.Headers.GetValues("Access-Control-Allow-Methods").Single());
        Assert.Contains("Upload-Offset", response.Headers.GetValues("Access-Control-Allow-Headers").Single());
        Assert.Contains("Location", response.Headers.GetValues("Access-Control-Expose-Headers").Single());
    }

    [Fact]
    public async Task Upload_in_chunks_completes_into_the_content_store()
    {
        var bytes = RandomNumberGenerator.GetBytes(300_000);
        var location = await CreateAsync(Http, bytes.Length, Meta(("filename", "model.onnx"), ("kind", "model")));

        using var head = await Http.SendAsync(Tus(HttpMethod.Head, location), Ct);
        Assert.Equal("0", head.Headers.GetValues("Upload-Offset").Single());
        Assert.Equal("300000", head.Headers.GetValues("Upload-Length").Single());
        Assert.Equal("no-store", head.Headers.CacheControl?.ToString());
        Assert.True(head.Headers.Contains("Upload-Expires"));

        for (var offset = 0; offset < bytes.Length; offset += 100_000)
        {
            using var patch = await PatchAsync(Http, location, offset, bytes[offset..(offset + 100_000)]);
            Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
            Assert.Equal((offset + 100_000).ToString(System.Globalization.CultureInfo.InvariantCulture), patch.Headers.GetValues("Upload-Offset").Single());
        }

        var info = await (await Http.GetAsync(location, Ct)).JsonAsync();
        Assert.Equal("completed", info.GetProperty("state").GetString());
        Assert.Equal("model.onnx", info.GetProperty("metadata").GetProperty("filename").GetString());
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        Assert.Equal(sha, info.GetProperty("sha256").GetString());
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync($"/api/artifacts/{sha}", Ct)).StatusCode);
    }

    [Fact]
    public async Task Creation_with_upload_and_deferred_length()
    {
        using var create = Tus(HttpMethod.Post, "/api/uploads");
        create.Headers.Add("Upload-Defer-Length", "1");
        create.Content = new ByteArrayContent([1, 2, 3]);
        create.Content.Headers.ContentType = new MediaTypeHeaderValue("application/offset+octet-stream");

        using var created = await Http.SendAsync(create, Ct);
        var location = created.Headers.Location!.OriginalString;
        using var head = await Http.SendAsync(Tus(HttpMethod.Head, location), Ct);
        using var last = await PatchAsync(Http, location, 3, [4, 5], length: 5);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("3", created.Headers.GetValues("Upload-Offset").Single());
        Assert.Equal("1", head.Headers.GetValues("Upload-Defer-Length").Single());
        Assert.Equal(HttpStatusCode.NoContent, last.StatusCode);
        var info = await (await Http.GetAsync(location, Ct)).JsonAsync();
        Assert.Equal("completed", info.GetProperty("state").GetString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData([1, 2, 3, 4, 5])), info.GetProperty("sha256").GetString());
    }

    [Fact]
    public async Task Matching_checksum_appends_and_mismatch_is_460_with_nothing_appended()
    {
        var location = await CreateAsync(Http, 8);
        var first = new byte[] { 1, 2, 3, 4 };

        using var good = await PatchAsync(Http, location, 0, first, "sha256 " + Convert.ToBase64String(SHA256.HashData(first)));
        using var bad = await PatchAsync(Http, location, 4, [5, 6, 7, 8], "sha1 " + Convert.ToBase64String(SHA1.HashData(new byte[] { 9 })));
        using var unknown = await PatchAsync(Http, location, 4, [5, 6, 7, 8], "md4 AAAA");

        Assert.Equal(HttpStatusCode.NoContent, good.StatusCode);
        Assert.Equal(460, (int)bad.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Equal(4, await OffsetAsync(Http, location));
    }

    [Fact]
    public async Task Wrong_offset_is_409()
    {
        var location = await CreateAsync(Http, 10);

        using var response = await PatchAsync(Http, location, 5, [1, 2, 3]);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal(0, await OffsetAsync(Http, location));
    }

    [Fact]
    public async Task Wrong_content_type_is_415()
    {
        var location = await CreateAsync(Http, 10);
        using var request = Tus(HttpMethod.Patch, location);
        request.Headers.Add("Upload-Offset", "0");
        request.Content = new ByteArrayContent([1, 2, 3]);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");

        using var response = await Http.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task Missing_or_wrong_tus_resumable_is_412_with_the_supported_version()
    {
        using var missing = await Http.PostAsync("/api/uploads", null, Ct);
        using var wrong = new HttpRequestMessage(HttpMethod.Post, "/api/uploads");
        wrong.Headers.Add("Tus-Resumable", "0.2.2");
        wrong.Headers.Add("Upload-Length", "1");
        using var wrongResponse = await Http.SendAsync(wrong, Ct);

        Assert.Equal(HttpStatusCode.PreconditionFailed, missing.StatusCode);
        Assert.Equal("1.0.0", missing.Headers.GetValues("Tus-Version").Single());
        Assert.Equal(HttpStatusCode.PreconditionFailed, wrongResponse.StatusCode);
    }

    [Fact]
    public async Task Body_larger_than_the_declared_length_is_413_and_appends_nothing()
    {
        var location = await CreateAsync(Http, 4);

        using var response = await PatchAsync(Http, location, 0, [1, 2, 3, 4, 5, 6]);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(0, await OffsetAsync(Http, location));
    }

    [Fact]
    public async Task Length_over_max_size_is_413()
    {
        using var request = Tus(HttpMethod.Post, "/api/uploads");
        request.Headers.Add("Upload-Length", long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture));

        using var response = await Http.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Theory]
    [InlineData("filename !!!notbase64")]
    [InlineData("filename")]
    [InlineData("kind " + "c2NyaXB0")] // "script"
    [InlineData("a YQ==,a Yg==")]
    public async Task Bad_metadata_is_400(string metadata)
    {
        using var request = Tus(HttpMethod.Post, "/api/uploads");
        request.Headers.Add("Upload-Length", "10");
        request.Headers.TryAddWithoutValidation("Upload-Metadata", metadata);

        using var response = await Http.SendAsync(request, Ct);

        // A key without a value is allowed by tus; only malformed values, bad kinds and duplicates are refused.
        Assert.Equal(metadata == "filename" ? HttpStatusCode.Created : HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Creation_without_length_is_400()
    {
        using var response = await Http.SendAsync(Tus(HttpMethod.Post, "/api/uploads"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Theory]
    [InlineData("/api/uploads/0123456789abcdef0123456789abcdef")]
    [InlineData("/api/uploads/not-an-id")]
    public async Task Unknown_upload_is_404(string path)
    {
        using var head = await Http.SendAsync(Tus(HttpMethod.Head, path), Ct);
        using var patch = await PatchAsync(Http, path, 0, [1]);

        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, patch.StatusCode);
    }

    [Fact]
    public async Task Terminated_upload_is_gone_and_its_bytes_deleted()
    {
        var location = await CreateAsync(Http, 10);
        using (await PatchAsync(Http, location, 0, [1, 2, 3]))
        {
        }

        using var delete = await Http.SendAsync(Tus(HttpMethod.Delete, location), Ct);
        using var head = await Http.SendAsync(Tus(HttpMethod.Head, location), Ct);
        using var patch = await PatchAsync(Http, location, 3, [4]);

        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        Assert.Equal(HttpStatusCode.Gone, patch.StatusCode);
        var id = location.Split('/')[^1];
        var files = fixture.Gateway.Services.GetService(typeof(Core.UploadFileStore)) as Core.UploadFileStore;
        Assert.False(File.Exists(files!.PathOf(id)));
    }

    [Fact]
    public async Task Method_override_header_lets_post_act_as_patch()
    {
        var location = await CreateAsync(Http, 2);
        using var request = Tus(HttpMethod.Post, location);
        request.Headers.Add("X-HTTP-Method-Override", "PATCH");
        request.Headers.Add("Upload-Offset", "0");
        request.Content = new ByteArrayContent([7, 8]);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/offset+octet-stream");

        using var response = await Http.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(2, await OffsetAsync(Http, location));
    }
}

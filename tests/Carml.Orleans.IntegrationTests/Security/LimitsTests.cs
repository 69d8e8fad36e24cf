using System.Net;
using Carml.Orleans.Gateway.KServe.Grpc;
using Carml.Orleans.Gateway.Security;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Carml.Orleans.Tests.Security;

/// <summary>A gateway with tight limits: requests per caller per hour, one request in flight per caller, tiny tensors and batches, small uploads.</summary>
public sealed class LimitedGatewayFixture : IAsyncLifetime
{
    public const int RequestsPerWindow = 12;

    private readonly TempDirectory _data = new();
    private GatewayInstance? _gateway;

    public string AdminKey { get; } = ApiKeyFormat.Generate().Key;

    public GatewayInstance Gateway => _gateway ?? throw new InvalidOperationException("The gateway has not started.");

    public async ValueTask InitializeAsync() => _gateway = await GatewayInstance.StartAsync(_data.Path, new Dictionary<string, string?>
    {
        ["Carml:Auth:Enabled"] = "true",
        ["Carml:Auth:BootstrapAdminKey"] = AdminKey,
        ["Carml:Limits:RequestsPerWindow"] = RequestsPerWindow.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Carml:Limits:Window"] = "01:00:00",
        ["Carml:Limits:ConcurrentRequests"] = "1",
        ["Carml:Limits:MaxTensorElements"] = "10",
        ["Carml:Limits:MaxBatchSize"] = "4",
        ["Carml:Uploads:MaxSize"] = "1000",
    });

    /// <summary>A fresh key, so each test has its own rate-limit partition.</summary>
    public async Task<string> NewKeyAsync(string user) =>
        (await Gateway.Services.GetRequiredService<ApiKeyStore>().CreateAsync(new ApiKeyRequest(user, null, null, Admin: true), new CarmlPrincipal("admin", null, [], true))).Key;

    public HttpClient Client(string key)
    {
        var client = new HttpClient { BaseAddress = Gateway.Http.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        _data.Dispose();
    }
}

public sealed class LimitsTests(LimitedGatewayFixture fixture) : IClassFixture<LimitedGatewayFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Over_the_request_rate_answers_429_with_retry_after_on_both_route_shapes()
    {
        using var http = fixture.Client(await fixture.NewKeyAsync("rate-http"));
        for (var i = 0; i < LimitedGatewayFixture.RequestsPerWindow; i++)
        {
            using var ok = await http.GetAsync("/api/models", Ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var rest = await http.GetAsync("/api/models", Ct);
        using var kserve = await http.GetAsync("/v2/models/iris", Ct);
        using var health = await http.GetAsync("/v2/health/live", Ct);

        Assert.Equal(HttpStatusCode.TooManyRequests, rest.StatusCode);
        Assert.True(rest.Headers.RetryAfter?.Delta > TimeSpan.Zero, "Retry-After is missing.");
        Assert.Equal("application/problem+json", rest.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.TooManyRequests, kserve.StatusCode);
        Assert.Contains("Too many requests", (await kserve.JsonAsync()).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        using var other = fixture.Client(await fixture.NewKeyAsync("rate-other"));
        using var unaffected = await other.GetAsync("/api/models", Ct);
        Assert.Equal(HttpStatusCode.OK, unaffected.StatusCode);
    }

    [Fact]
    public async Task Over_the_request_rate_on_grpc_is_resource_exhausted_with_a_retry_after_trailer()
    {
        var key = await fixture.NewKeyAsync("rate-grpc");
        var headers = new Metadata { { "authorization", "Bearer " + key } };
        for (var i = 0; i < LimitedGatewayFixture.RequestsPerWindow; i++)
        {
            await fixture.Gateway.Grpc.ServerMetadataAsync(new ServerMetadataRequest(), headers, cancellationToken: Ct);
        }

        var refused = await Assert.ThrowsAsync<RpcException>(() =>
            fixture.Gateway.Grpc.ServerMetadataAsync(new ServerMetadataRequest(), headers, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.True(int.Parse(refused.Trailers.GetValue("retry-after")!, System.Globalization.CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public async Task A_second_request_while_one_is_in_flight_answers_429()
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            // A fresh key per attempt: every poll spends a token of the key's hourly rate, and an attempt that lost the
            // race must not leave the next one with an empty bucket (whose 429s would say nothing about concurrency).
            using var http = fixture.Client(await fixture.NewKeyAsync($"concurrent-{attempt}"));
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var slow = http.PostAsync("/api/artifacts", new HeldContent(started, release.Task), Ct);
            await started.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);

            var refused = await PollAsync(http, HttpStatusCode.TooManyRequests, slow);
            release.SetResult();
            using var finished = await slow;
            if (finished.StatusCode == HttpStatusCode.TooManyRequests)
            {
                continue; // a poll got in before the held request did: try again
            }

            var accepted = await PollAsync(http, HttpStatusCode.OK, null);
            Assert.True(refused, "No request was refused while another was in flight.");
            Assert.Equal(HttpStatusCode.Created, finished.StatusCode);
            Assert.True(accepted, "Requests were still refused after the one in flight ended.");
            return;
        }

        Assert.Fail("The held request never got in first in three attempts.");
    }

    [Fact]
    public async Task Too_many_tensor_elements_or_too_large_a_batch_is_invalid_argument()
    {
        using var http = fixture.Client(fixture.AdminKey);
        var grpcHeaders = new Metadata { { "authorization", "Bearer " + fixture.AdminKey } };

        using var elements = await http.PostJsonAsync("/v2/models/iris/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(3)));
        var grpcElements = await Assert.ThrowsAsync<RpcException>(() =>
            fixture.Gateway.Grpc.ModelInferAsync(KServeGrpcTests.Typed(TestModels.IrisRows.Take(3)), grpcHeaders, cancellationToken: Ct).ResponseAsync);
        using var batch = await http.PostJsonAsync("/v2/models/iris/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(5)));
        using var fits = await http.PostJsonAsync("/v2/models/iris/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(2)));

        Assert.Equal(HttpStatusCode.BadRequest, elements.StatusCode);
        Assert.Contains("MaxTensorElements", (await elements.JsonAsync()).GetProperty("error").GetString());
        Assert.Equal(StatusCode.InvalidArgument, grpcElements.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, batch.StatusCode);
        Assert.Contains("MaxBatchSize", (await batch.JsonAsync()).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
    }

    [Fact]
    public async Task An_upload_larger_than_the_limit_is_refused_with_413()
    {
        using var http = fixture.Client(await fixture.NewKeyAsync("upload"));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/uploads");
        request.Headers.Add("Tus-Resumable", "1.0.0");
        request.Headers.Add("Upload-Length", "1001");

        using var response = await http.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    /// <summary>Asks until the answer is <paramref name="wanted"/> (bounded), or until <paramref name="held"/> ends.</summary>
    private static async Task<bool> PollAsync(HttpClient http, HttpStatusCode wanted, Task? held)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && held?.IsCompleted != true)
        {
            using var response = await http.GetAsync("/api/agents", Ct);
            if (response.StatusCode == wanted)
            {
                return true;
            }

            await Task.Delay(50, Ct);
        }

        return false;
    }

    /// <summary>A request body that sends one byte, then waits until released before sending the rest.</summary>
    private sealed class HeldContent(TaskCompletionSource started, Task release) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            await stream.WriteAsync(new byte[] { 1 });
            await stream.FlushAsync();
            started.TrySetResult();
            await release;
            await stream.WriteAsync(new byte[] { 2, 3 });
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 3;
            return true;
        }
    }
}

using System.Net;
using Carml.Orleans.Gateway.KServe.Grpc;
using Google.Protobuf;
using Grpc.Core;

namespace Carml.Orleans.Tests;

/// <summary>Tests that own their gateways: restarts over one data directory, and small request limits.</summary>
public sealed class RestartAndLimitsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Registered_model_survives_a_restart_and_serves_at_once()
    {
        using var data = new TempDirectory();
        var settings = new Dictionary<string, string?> { ["Carml:SampleModel:Enabled"] = "false" };
        await using (var first = await GatewayInstance.StartAsync(data.Path, settings))
        {
            await ModelRegistration.RegisterAsync(first.Http, TestModels.IrisManifest("durable", "4"), TestModels.Iris.OnnxBytes);
            await ModelRegistration.RegisterAsync(first.Http, TestModels.TypedManifest("durable-typed"), TestModels.TypedModel());
            Assert.Equal(HttpStatusCode.NoContent, (await first.Http.DeleteAsync("/api/models/durable-typed/versions/1", Ct)).StatusCode);
        }

        await using var second = await GatewayInstance.StartAsync(data.Path, settings);

        var list = await (await second.Http.GetAsync("/api/models", Ct)).JsonAsync();
        Assert.Equal(["durable"], list.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        var status = await (await second.Http.GetAsync("/api/models/durable/versions/4", Ct)).JsonAsync();
        Assert.Equal("ready", status.GetProperty("state").GetString());
        Assert.Equal(HttpStatusCode.OK, (await second.Http.GetAsync("/v2/models/durable/ready", Ct)).StatusCode);
        var rows = TestModels.IrisRows.Take(5).ToArray();
        var response = await (await second.Http.PostJsonAsync("/v2/models/durable/infer", KServeHttpTests.IrisRequest(rows))).JsonAsync();
        var labels = response.GetProperty("outputs")[1].GetProperty("data").EnumerateArray().Select(e => e.GetInt64());
        Assert.Equal(rows.Select(r => (long)TestModels.Iris.Model.PredictLabel(r.Features)), labels);
        Assert.Equal(HttpStatusCode.NotFound, (await second.Http.GetAsync("/v2/models/durable-typed", Ct)).StatusCode);
    }

    [Fact]
    public async Task Sample_model_is_registered_once_across_restarts()
    {
        using var data = new TempDirectory();
        string? registeredAt;
        await using (var first = await GatewayInstance.StartAsync(data.Path))
        {
            registeredAt = (await (await first.Http.GetAsync("/api/models/iris/versions/1", Ct)).JsonAsync()).GetProperty("registered_at").GetString();
        }

        await using var second = await GatewayInstance.StartAsync(data.Path);

        var again = (await (await second.Http.GetAsync("/api/models/iris/versions/1", Ct)).JsonAsync()).GetProperty("registered_at").GetString();
        Assert.Equal(registeredAt, again);
    }

    [Fact]
    public async Task Oversized_requests_are_413_over_http_and_resource_exhausted_over_grpc()
    {
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(data.Path, new Dictionary<string, string?>
        {
            ["Carml:Gateway:MaxRequestBytes"] = "2048",
        });
        var rows = Enumerable.Repeat(TestModels.IrisRows[0], 250).ToArray();

        var json = await gateway.Http.PostJsonAsync("/v2/models/iris/infer", KServeHttpTests.IrisRequest(rows));
        var upload = await gateway.Http.PostAsync("/api/models", ModelRegistration.Multipart(TestModels.IrisManifest("big", "1"), new byte[40_000]), Ct);
        var grpc = await Assert.ThrowsAsync<RpcException>(() => gateway.Grpc.ModelInferAsync(new ModelInferRequest
        {
            ModelName = "iris",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 2000, 4 } } },
            RawInputContents = { ByteString.CopyFrom(new byte[32_000]) },
        }, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, json.StatusCode);
        Assert.Contains("larger than", (await json.JsonAsync()).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, upload.StatusCode);
        Assert.True(grpc.StatusCode == StatusCode.ResourceExhausted, grpc.ToString());

        // A plain HTTP/1.1 request that only claims a gRPC content type gets the HTTP limit, not gRPC's per-message one.
        using var disguised = new ByteArrayContent(new byte[40_000]);
        disguised.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        using var refused = await gateway.Http.PostAsync("/v2/models/iris/infer", disguised, Ct);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
    }
}

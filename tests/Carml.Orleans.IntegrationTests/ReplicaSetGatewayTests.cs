using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using Carml.Orleans.Gateway.KServe.Grpc;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Onnx.Synthetic;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Carml.Orleans.Tests;

/// <summary>Replica sets through the gateway: scaling over REST and the per-replica admission cap, with real clients.</summary>
[Collection(GatewayCollection.Name)]
public sealed class ReplicaSetGatewayTests(GatewayFixture fixture)
{
    private const int InputSize = 4;

    private static readonly Lazy<byte[]> Model = new(() => MlpModelFactory.Create(InputSize, [8], 3, seed: 11).ToOnnxModel("mlp-replicas").ToBytes());

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private HttpClient Http => fixture.Gateway.Http;

    private static string Manifest(string name, string extra = "") => $$"""
        name: {{name}}
        version: "1"
        max_batch_size: 64
        inputs: [{name: input, datatype: FP32, shape: [-1, {{InputSize}}]}]
        outputs: [{name: output, datatype: FP32, shape: [-1, 3]}]
        """ + "\n" + extra + "\n";

    private static ModelInferRequest Request(string model) => new()
    {
        ModelName = model,
        Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, InputSize } } },
        RawInputContents = { ByteString.CopyFrom(MemoryMarshal.AsBytes(new float[] { 0.1f, 0.2f, 0.3f, 0.4f }.AsSpan())) },
    };

    private Task<HttpResponseMessage> ScaleAsync(string path, string body) =>
        Http.PutAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);

    [Fact]
    public async Task Scaling_through_the_api_sets_the_replica_count_and_every_replica_serves()
    {
        await ModelRegistration.RegisterAsync(Http, Manifest("replicas-scale"), Model.Value);

        using var up = await ScaleAsync("/api/models/replicas-scale/versions/1/replicas", """{"replicas": 3}""");
        var body = await up.JsonAsync();

        Assert.Equal(HttpStatusCode.OK, up.StatusCode);
        Assert.Equal(3, body.GetProperty("replica_count").GetInt32());
        Assert.Equal(["ready", "ready", "ready"], body.GetProperty("replicas").EnumerateArray().Select(r => r.GetProperty("state").GetString()));
        var grains = fixture.Gateway.Services.GetRequiredService<IGrainFactory>();
        for (var i = 0; i < 3; i++)
        {
            var response = await grains.GetGrain<IModelReplicaGrain>($"replicas-scale/1/{i}").InferAsync(
                new InferenceRequest([new InferenceTensor("input", TensorDatatype.FP32, [1, InputSize], new byte[16])]), Ct);
            Assert.Equal(12, response.Outputs[0].Data.Length);
        }

        using var down = await ScaleAsync("/api/models/replicas-scale/versions/latest/replicas", """{"replicas": 1}""");
        var after = await (await Http.GetAsync("/api/models/replicas-scale/versions/1", Ct)).JsonAsync();

        Assert.Equal(HttpStatusCode.OK, down.StatusCode);
        Assert.Equal(1, after.GetProperty("replica_count").GetInt32());
        Assert.Single(after.GetProperty("replicas").EnumerateArray());
    }

    [Theory]
    [InlineData("""{"replicas": 0}""", "between 1 and 64")]
    [InlineData("""{"replicas": 65}""", "between 1 and 64")]
    [InlineData("""{}""", "The body must be {\"replicas\": N}.")]
    [InlineData("""{"replicas": "two"}""", "from the request body as JSON. The JSON value could not be converted to Carml.Orleans.Gateway.Management.ScaleRequest. Path: $.replicas")]
    [InlineData("""not json""", "from the request body as JSON. 'not json' is an invalid JSON literal")]
    public async Task Scaling_with_a_bad_body_is_a_bad_request(string body, string message)
    {
        await ModelRegistration.RegisterAsync(Http, Manifest("replicas-bad"), Model.Value);

        using var response = await ScaleAsync("/api/models/replicas-bad/versions/1/replicas", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Scaling_an_unknown_model_is_not_found()
    {
        using var response = await ScaleAsync("/api/models/replicas-nobody/versions/1/replicas", """{"replicas": 2}""");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task A_replica_at_its_concurrency_cap_refuses_more_requests_with_resource_exhausted()
    {
        const string model = "replicas-capped";
        await ModelRegistration.RegisterAsync(
            Http,
            Manifest(model, "dynamic_batching: {max_queue_delay_microseconds: 60000000}\ndeployment: {max_concurrent_requests: 1}"),
            [.. Model.Value, 0x32, 6, .. "capped"u8]);
        var grains = fixture.Gateway.Services.GetRequiredService<IGrainFactory>();
        using var hold = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        // The first request waits in the batcher for company (60 s), holding the replica's only admission.
        var held = fixture.Gateway.Grpc.ModelInferAsync(Request(model), cancellationToken: hold.Token).ResponseAsync;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((await grains.GetGrain<IModelReplicaGrain>($"{model}/1/0").GetStatisticsAsync()).Queued != 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "The first request was not queued within 30 s.");
            await Task.Delay(50, Ct);
        }

        var grpc = await Assert.ThrowsAsync<RpcException>(() => fixture.Gateway.Grpc.ModelInferAsync(Request(model), cancellationToken: Ct).ResponseAsync);
        using var http = await Http.PostAsync(
            $"/v2/models/{model}/infer",
            new StringContent("""{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[0.1,0.2,0.3,0.4]}]}""", System.Text.Encoding.UTF8, "application/json"),
            Ct);

        Assert.Equal(StatusCode.ResourceExhausted, grpc.StatusCode);
        Assert.Contains("max_concurrent_requests", grpc.Status.Detail);
        Assert.Equal(HttpStatusCode.TooManyRequests, http.StatusCode);
        Assert.Contains("max_concurrent_requests", JsonDocument.Parse(await http.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("error").GetString());
        await hold.CancelAsync();
        await Assert.ThrowsAsync<RpcException>(() => held);
    }
}

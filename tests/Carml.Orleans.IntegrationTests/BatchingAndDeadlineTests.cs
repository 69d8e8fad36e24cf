using System.Net;
using System.Runtime.InteropServices;
using Carml.Orleans.Gateway.KServe.Grpc;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Onnx.Synthetic;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Carml.Orleans.Tests;

/// <summary>
/// Dynamic batching, queue limits, timeouts and cancellation end to end: a real gateway, real clients, a small MLP.
/// Waits for server-side state are bounded polls of the replica's statistics, never sleeps.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class BatchingAndDeadlineTests(GatewayFixture fixture)
{
    private const int InputSize = 4;
    private const int OutputSize = 3;

    /// <summary>Long enough that a lone request stays queued for the whole test.</summary>
    private const long HoldMicroseconds = 60_000_000;

    private static readonly Lazy<byte[]> Model = new(() => MlpModelFactory.Create(InputSize, [16], OutputSize, seed: 7).ToOnnxModel("mlp").ToBytes());

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private GRPCInferenceService.GRPCInferenceServiceClient Grpc => fixture.Gateway.Grpc;

    private static string Manifest(string name, string? batching) => $$"""
        name: {{name}}
        version: "1"
        max_batch_size: 64
        inputs: [{name: input, datatype: FP32, shape: [-1, {{InputSize}}]}]
        outputs: [{name: output, datatype: FP32, shape: [-1, {{OutputSize}}]}]
        runtime: {max_concurrent_runs: 1}
        """ + (batching is null ? string.Empty : $"\ndynamic_batching: {batching}\n");

    private static float[] Row(int i) => [i * 0.1f, 1f - (i * 0.05f), (i % 3) * 0.7f, -0.2f * i];

    private static ModelInferRequest Request(string model, float[] row, long? timeoutMicroseconds = null)
    {
        var request = new ModelInferRequest
        {
            ModelName = model,
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, InputSize } } },
            RawInputContents = { ByteString.CopyFrom(MemoryMarshal.AsBytes(row.AsSpan())) },
        };
        if (timeoutMicroseconds is { } timeout)
        {
            request.Parameters.Add("timeout", new InferParameter { Int64Param = timeout });
        }

        return request;
    }

    private static float[] Output(ModelInferResponse response) => MemoryMarshal.Cast<byte, float>(response.RawOutputContents[0].Span).ToArray();

    private static string JsonRequest(float[] row, long? timeoutMicroseconds = null) =>
        $$"""{"inputs":[{"name":"input","shape":[1,{{InputSize}}],"datatype":"FP32","data":[{{string.Join(",", row.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}}]}]{{(timeoutMicroseconds is { } t ? $",\"parameters\":{{\"timeout\":{t}}}" : "")}}}""";

    private Task<ReplicaStatistics> StatisticsAsync(string model) =>
        fixture.Gateway.Services.GetRequiredService<IGrainFactory>().GetGrain<IModelReplicaGrain>($"{model}/1/0").GetStatisticsAsync();

    /// <summary>Polls the replica's statistics until the condition holds; fails with the last statistics after 30 s.</summary>
    private async Task<ReplicaStatistics> WaitForAsync(string model, Func<ReplicaStatistics, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var statistics = await StatisticsAsync(model);
            if (condition(statistics))
            {
                return statistics;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Waited 30 s for {what} on '{model}'; the replica reports {statistics}.");
            }

            await Task.Delay(10, Ct);
        }
    }

    [Fact]
    public async Task Concurrent_requests_are_batched_and_each_gets_the_result_it_gets_alone()
    {
        await ModelRegistration.RegisterAsync(fixture.Gateway.Http, Manifest("mlp-alone", null), Model.Value);
        await ModelRegistration.RegisterAsync(
            fixture.Gateway.Http,
            Manifest("mlp-batched", $"{{max_queue_delay_microseconds: 2000000, preferred_batch_size: [8]}}"),
            Model.Value);
        var rows = Enumerable.Range(0, 8).Select(Row).ToArray();
        var alone = new List<float[]>();
        foreach (var row in rows)
        {
            var single = await Grpc.ModelInferAsync(Request("mlp-alone", row), cancellationToken: Ct);
            Assert.Equal(1, single.Parameters["batch_size"].Int64Param);
            alone.Add(Output(single));
        }

        var batched = await Task.WhenAll(rows.Select(row => Grpc.ModelInferAsync(Request("mlp-batched", row), cancellationToken: Ct).ResponseAsync));

        Assert.Contains(batched, r => r.Parameters["batch_size"].Int64Param > 1);
        for (var i = 0; i < rows.Length; i++)
        {
            Assert.Equal([1L, OutputSize], batched[i].Outputs[0].Shape);
            Assert.Equal(alone[i], Output(batched[i]), (a, b) => Math.Abs(a - b) <= 1e-6f);
            Assert.True(batched[i].Parameters["compute_time_us"].Int64Param >= 0);
            Assert.True(batched[i].Parameters["queue_time_us"].Int64Param >= 0);
        }

        var statistics = await StatisticsAsync("mlp-batched");
        Assert.True(statistics.MaxBatchRows > 1, $"no batch had more than one row: {statistics}");
        Assert.True(statistics.Batches < 8, $"8 requests ran as {statistics.Batches} batches");
        Assert.Equal(8, statistics.BatchedRows);
    }

    [Fact]
    public async Task A_batch_of_a_model_with_five_outputs_of_mixed_types_gives_each_request_its_own_rows()
    {
        const string model = "typed-batched";
        await ModelRegistration.RegisterAsync(
            fixture.Gateway.Http,
            TestModels.TypedManifest(model) + "\ndynamic_batching: {max_queue_delay_microseconds: 2000000, preferred_batch_size: [6]}\nruntime: {max_concurrent_runs: 1}\n",
            // Bytes of its own (a second doc_string field, which protobuf merges), so the shared content store does not
            // hold the plain typed model that other tests expect absent.
            [.. TestModels.TypedModel(), 0x32, 7, .. System.Text.Encoding.UTF8.GetBytes("batched")]);

        // Three requests of 1, 2 and 3 rows: one batch of 6 rows.
        var sizes = new[] { 1, 2, 3 };
        var responses = await Task.WhenAll(sizes.Select((rows, r) =>
            Grpc.ModelInferAsync(TypedRequest(model, rows, offset: r * 10), cancellationToken: Ct).ResponseAsync));

        for (var r = 0; r < sizes.Length; r++)
        {
            var rows = sizes[r];
            var offset = r * 10;
            var response = responses[r];
            Assert.Equal(6, response.Parameters["batch_size"].Int64Param);
            var outputs = response.Outputs.Select((o, i) => (o.Name, o.Shape, Data: response.RawOutputContents[i].ToByteArray())).ToDictionary(o => o.Name);
            Assert.Equal(Enumerable.Range(0, rows * 2).Select(i => 2.0 * (offset + i)), MemoryMarshal.Cast<byte, double>(outputs["f64_out"].Data).ToArray());
            Assert.Equal(Enumerable.Range(0, rows).Select(i => offset + i + 1), MemoryMarshal.Cast<byte, int>(outputs["i32_out"].Data).ToArray());
            Assert.Equal(Enumerable.Range(0, rows).Select(i => -(long)(offset + i)), MemoryMarshal.Cast<byte, long>(outputs["i64_out"].Data).ToArray());
            Assert.Equal(Enumerable.Range(0, rows * 3).Select(i => (byte)(offset + i)), outputs["u8_out"].Data);
            Assert.Equal(Enumerable.Range(0, rows).Select(i => (byte)((offset + i) % 2 == 0 ? 1 : 0)), outputs["flag_out"].Data);
            Assert.Equal([(long)rows, 3L], outputs["u8_out"].Shape);
            Assert.Equal([(long)rows], outputs["flag_out"].Shape);
        }

        Assert.Equal(1, (await StatisticsAsync(model)).Batches);
    }

    /// <summary>A request for <see cref="TestModels.TypedModel"/> with rows numbered from <paramref name="offset"/>.</summary>
    private static ModelInferRequest TypedRequest(string model, int rows, int offset)
    {
        var f64 = Enumerable.Range(0, rows * 2).Select(i => (double)(offset + i)).ToArray();
        var i32 = Enumerable.Range(0, rows).Select(i => offset + i).ToArray();
        var i64 = Enumerable.Range(0, rows).Select(i => (long)(offset + i)).ToArray();
        var u8 = Enumerable.Range(0, rows * 3).Select(i => (byte)(offset + i)).ToArray();
        var flag = Enumerable.Range(0, rows).Select(i => (byte)((offset + i) % 2)).ToArray();
        ModelInferRequest.Types.InferInputTensor Input(string name, string datatype, params long[] shape) =>
            new() { Name = name, Datatype = datatype, Shape = { shape } };
        return new ModelInferRequest
        {
            ModelName = model,
            Inputs =
            {
                Input("f64", "FP64", rows, 2), Input("i32", "INT32", rows), Input("i64", "INT64", rows),
                Input("u8", "UINT8", rows, 3), Input("flag", "BOOL", rows),
            },
            RawInputContents =
            {
                ByteString.CopyFrom(MemoryMarshal.AsBytes(f64.AsSpan())), ByteString.CopyFrom(MemoryMarshal.AsBytes(i32.AsSpan())),
                ByteString.CopyFrom(MemoryMarshal.AsBytes(i64.AsSpan())), ByteString.CopyFrom(u8), ByteString.CopyFrom(flag),
            },
        };
    }

    [Fact]
    public async Task Http_responses_carry_the_queue_and_compute_split()
    {
        using var response = await fixture.Gateway.Http.PostJsonAsync("/v2/models/iris/infer",
            """{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}""");
        var json = await response.JsonAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var parameters = json.GetProperty("parameters");
        Assert.True(parameters.GetProperty("queue_time_us").GetInt64() >= 0);
        Assert.True(parameters.GetProperty("compute_time_us").GetInt64() >= 0);
        Assert.Equal(1, parameters.GetProperty("batch_size").GetInt64());
    }

    [Fact]
    public async Task A_full_queue_answers_429_over_http_and_resource_exhausted_over_grpc()
    {
        const string model = "mlp-full";
        await ModelRegistration.RegisterAsync(fixture.Gateway.Http, Manifest(model, $"{{max_queue_delay_microseconds: {HoldMicroseconds}, max_queue_size: 1}}"), Model.Value);
        using var hold = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var held = Grpc.ModelInferAsync(Request(model, Row(1)), cancellationToken: hold.Token).ResponseAsync;
        await WaitForAsync(model, s => s.Queued == 1, "the first request to be queued");

        using var http = await fixture.Gateway.Http.PostJsonAsync($"/v2/models/{model}/infer", JsonRequest(Row(2)));
        var grpc = await Assert.ThrowsAsync<RpcException>(() => Grpc.ModelInferAsync(Request(model, Row(3)), cancellationToken: Ct).ResponseAsync);

        Assert.Equal(HttpStatusCode.TooManyRequests, http.StatusCode);
        Assert.Contains("is full (1 requests waiting)", (await http.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(StatusCode.ResourceExhausted, grpc.StatusCode);
        Assert.Equal(2, (await StatisticsAsync(model)).Rejected);

        await hold.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => held);
        await WaitForAsync(model, s => s.Queued == 0, "the held request to leave");
    }

    [Fact]
    public async Task A_request_past_its_timeout_answers_504_and_never_reaches_the_runtime()
    {
        const string model = "mlp-timeout";
        await ModelRegistration.RegisterAsync(fixture.Gateway.Http, Manifest(model, $"{{max_queue_delay_microseconds: {HoldMicroseconds}}}"), Model.Value);

        using var response = await fixture.Gateway.Http.PostJsonAsync($"/v2/models/{model}/infer", JsonRequest(Row(1), timeoutMicroseconds: 200_000));
        var error = (await response.JsonAsync()).GetProperty("error").GetString();

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("passed its timeout of 200 ms; it was not run", error, StringComparison.Ordinal);

        var grpc = await Assert.ThrowsAsync<RpcException>(() => Grpc.ModelInferAsync(Request(model, Row(2), timeoutMicroseconds: 200_000), cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, grpc.StatusCode);
        Assert.Contains("passed its timeout", grpc.Status.Detail, StringComparison.Ordinal);

        var statistics = await StatisticsAsync(model);
        Assert.Equal(2, statistics.Expired);
        Assert.Equal(0, statistics.Batches);
    }

    [Fact]
    public async Task A_timeout_longer_than_a_day_is_a_client_error_on_both_protocols()
    {
        const string model = "mlp-long-timeout";
        await ModelRegistration.RegisterAsync(fixture.Gateway.Http, Manifest(model, "{}"), Model.Value);

        using var response = await fixture.Gateway.Http.PostJsonAsync($"/v2/models/{model}/infer", JsonRequest(Row(1), timeoutMicroseconds: long.MaxValue));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("between 0 and 86400000000", (await response.JsonAsync()).GetProperty("error").GetString(), StringComparison.Ordinal);

        var grpc = await Assert.ThrowsAsync<RpcException>(() => Grpc.ModelInferAsync(Request(model, Row(2), timeoutMicroseconds: 4_300_000_000_000), cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, grpc.StatusCode);

        // A gRPC deadline far in the future is no mistake: it counts as a day.
        var served = await Grpc.ModelInferAsync(Request(model, Row(3)), deadline: DateTime.UtcNow.AddDays(400), cancellationToken: Ct).ResponseAsync;
        Assert.Equal(Output(await Grpc.ModelInferAsync(Request(model, Row(3)), cancellationToken: Ct).ResponseAsync), Output(served));
    }

    [Fact]
    public async Task A_grpc_deadline_takes_the_request_out_of_the_queue_before_it_runs()
    {
        const string model = "mlp-deadline";
        await ModelRegistration.RegisterAsync(fixture.Gateway.Http, Manifest(model, $"{{max_queue_delay_microseconds: {HoldMicroseconds}}}"), Model.Value);

        // The deadline must leave time for the request to reach the queue on a loaded machine (the batcher holds it 60 s).
        var error = await Assert.ThrowsAsync<RpcException>(() =>
            Grpc.ModelInferAsync(Request(model, Row(1)), deadline: DateTime.UtcNow.AddSeconds(3), cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        var statistics = await WaitForAsync(model, s => s.Queued == 0 && s.Expired + s.Cancelled == 1, "the expired request to leave the queue");
        Assert.Equal(0, statistics.Batches);
    }

    [Fact]
    public async Task A_request_cancelled_by_its_client_never_reaches_the_runtime()
    {
        const string model = "mlp-cancel";
        await ModelRegistration.RegisterAsync(fixture.Gateway.Http, Manifest(model, $"{{max_queue_delay_microseconds: {HoldMicroseconds}, preferred_batch_size: [2]}}"), Model.Value);

        using (var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            var grpc = Grpc.ModelInferAsync(Request(model, Row(1)), cancellationToken: cancel.Token).ResponseAsync;
            await WaitForAsync(model, s => s.Queued == 1, "the gRPC request to be queued");
            await cancel.CancelAsync();
            Assert.Equal(StatusCode.Cancelled, (await Assert.ThrowsAsync<RpcException>(() => grpc)).StatusCode);
            await WaitForAsync(model, s => s.Queued == 0 && s.Cancelled == 1, "the cancelled gRPC request to leave the queue");
        }

        using (var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            var http = fixture.Gateway.Http.PostAsync(
                $"/v2/models/{model}/infer", new StringContent(JsonRequest(Row(2)), System.Text.Encoding.UTF8, "application/json"), cancel.Token);
            await WaitForAsync(model, s => s.Queued == 1, "the HTTP request to be queued");
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => http);
            await WaitForAsync(model, s => s.Queued == 0 && s.Cancelled == 2, "the abandoned HTTP request to leave the queue");
        }

        // Two more form a preferred batch of 2 at once: the runtime sees exactly those two rows.
        var responses = await Task.WhenAll(
            Grpc.ModelInferAsync(Request(model, Row(3)), cancellationToken: Ct).ResponseAsync,
            Grpc.ModelInferAsync(Request(model, Row(4)), cancellationToken: Ct).ResponseAsync);
        Assert.All(responses, r => Assert.Equal(2, r.Parameters["batch_size"].Int64Param));
        var statistics = await StatisticsAsync(model);
        Assert.Equal(1, statistics.Batches);
        Assert.Equal(2, statistics.BatchedRows);
    }
}

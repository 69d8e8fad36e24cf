using Carml.Orleans.Gateway.KServe.Grpc;
using Carml.Orleans.Onnx.Iris;
using Google.Protobuf;
using Grpc.Core;

namespace Carml.Orleans.Tests;

[Collection(GatewayCollection.Name)]
public sealed class KServeGrpcTests(GatewayFixture fixture)
{
    private GRPCInferenceService.GRPCInferenceServiceClient Client => fixture.Gateway.Grpc;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static IReadOnlyList<IrisSample> Rows => IrisDataset.Load(RepositoryPaths.IrisCsv).Samples;

    [Fact]
    public async Task Server_live_ready_and_metadata_answer()
    {
        Assert.True((await Client.ServerLiveAsync(new ServerLiveRequest(), cancellationToken: Ct)).Live);
        Assert.True((await Client.ServerReadyAsync(new ServerReadyRequest(), cancellationToken: Ct)).Ready);
        var metadata = await Client.ServerMetadataAsync(new ServerMetadataRequest(), cancellationToken: Ct);
        Assert.Equal("carml-orleans", metadata.Name);
        Assert.Contains("binary_tensor_data", metadata.Extensions);
    }

    [Fact]
    public async Task Model_metadata_and_ready_describe_the_sample()
    {
        var metadata = await Client.ModelMetadataAsync(new ModelMetadataRequest { Name = "iris" }, cancellationToken: Ct);

        Assert.Equal("iris", metadata.Name);
        Assert.Equal(["1"], metadata.Versions);
        Assert.Equal("onnxruntime_onnx", metadata.Platform);
        Assert.Equal("features", metadata.Inputs[0].Name);
        Assert.Equal("FP32", metadata.Inputs[0].Datatype);
        Assert.Equal([-1L, 4L], metadata.Inputs[0].Shape);
        Assert.True((await Client.ModelReadyAsync(new ModelReadyRequest { Name = "iris", Version = "1" }, cancellationToken: Ct)).Ready);
    }

    [Fact]
    public async Task Unknown_model_is_not_found_on_every_call()
    {
        var metadata = await Assert.ThrowsAsync<RpcException>(() => Client.ModelMetadataAsync(new ModelMetadataRequest { Name = "ghost" }, cancellationToken: Ct).ResponseAsync);
        var ready = await Assert.ThrowsAsync<RpcException>(() => Client.ModelReadyAsync(new ModelReadyRequest { Name = "iris", Version = "7" }, cancellationToken: Ct).ResponseAsync);
        var infer = await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(Typed(Rows.Take(1)) .WithName("ghost"), cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, metadata.StatusCode);
        Assert.Equal(StatusCode.NotFound, ready.StatusCode);
        Assert.Equal(StatusCode.NotFound, infer.StatusCode);
        Assert.Equal("Model 'ghost' is not registered.", infer.Status.Detail);
    }

    [Fact]
    public async Task Infer_with_typed_contents_matches_plain_csharp_softmax()
    {
        var rows = Rows.Take(20).ToArray();

        var response = await Client.ModelInferAsync(Typed(rows), cancellationToken: Ct);

        AssertIrisOutputs(response, rows);
        Assert.Equal("grpc-1", response.Id);
    }

    [Fact]
    public async Task Infer_with_raw_input_contents_matches_plain_csharp_softmax()
    {
        var rows = Rows.Skip(50).Take(64).ToArray();
        var request = new ModelInferRequest
        {
            ModelName = "iris",
            ModelVersion = "latest",
            Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { rows.Length, 4 } } },
            RawInputContents = { ByteString.CopyFrom(FloatBytes(rows.SelectMany(r => r.Features))) },
        };

        var response = await Client.ModelInferAsync(request, cancellationToken: Ct);

        AssertIrisOutputs(response, rows);
    }

    [Fact]
    public async Task Requested_outputs_limit_the_response()
    {
        var request = Typed(Rows.Take(2));
        request.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "label" });

        var response = await Client.ModelInferAsync(request, cancellationToken: Ct);

        Assert.Equal("label", Assert.Single(response.Outputs).Name);
        Assert.Equal("INT64", response.Outputs[0].Datatype);
    }

    [Fact]
    public async Task Unknown_grpc_service_is_unimplemented()
    {
        var bytes = Marshallers.Create<byte[]>(b => b, b => b);
        var method = new Method<byte[], byte[]>(MethodType.Unary, "no.such.Service", "Call", bytes, bytes);

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            fixture.Gateway.Channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(cancellationToken: Ct), []).ResponseAsync);

        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }

    public static TheoryData<string, string> BadRequests => new()
    {
        { "datatype", "input 'features': datatype FP64 does not match the model's FP32" },
        { "shape", "input 'features': shape [1,5] does not match the model's [-1,4] at dimension 1" },
        { "count", "input 'features': 3 values in contents do not match its shape (4 FP32 values expected)" },
        { "raw-count", "raw_input_contents has 2 entries but the request has 1 inputs" },
        { "raw-length", "input 'features': 12 bytes of data do not match shape [1,4] of FP32 (16 bytes expected)" },
        { "extra", "unknown input 'extra'" },
        { "batch", "batch size 300 exceeds the model's max_batch_size 256" },
        { "no-data", "input 'features' has no data: set contents or raw_input_contents" },
        { "no-inputs", "The request has no inputs." },
        { "bad-datatype", "datatype 'FLOAT32' is not a KServe v2 datatype" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_infer_request_is_invalid_argument_naming_the_problem(string mistake, string expected)
    {
        var request = new ModelInferRequest { ModelName = "iris" };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 4 } };
        request.Inputs.Add(input);
        switch (mistake)
        {
            case "datatype":
                input.Datatype = "FP64";
                input.Contents = new InferTensorContents { Fp64Contents = { 1, 2, 3, 4 } };
                break;
            case "shape":
                input.Shape[1] = 5;
                input.Contents = new InferTensorContents { Fp32Contents = { 1, 2, 3, 4, 5 } };
                break;
            case "count":
                input.Contents = new InferTensorContents { Fp32Contents = { 1, 2, 3 } };
                break;
            case "raw-count":
                request.RawInputContents.Add(ByteString.CopyFrom(new byte[16]));
                request.RawInputContents.Add(ByteString.CopyFrom(new byte[16]));
                break;
            case "raw-length":
                request.RawInputContents.Add(ByteString.CopyFrom(new byte[12]));
                break;
            case "extra":
                input.Contents = new InferTensorContents { Fp32Contents = { 1, 2, 3, 4 } };
                request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "extra", Datatype = "FP32", Shape = { 1 }, Contents = new() { Fp32Contents = { 1 } } });
                break;
            case "batch":
                input.Shape[0] = 300;
                input.Contents = new InferTensorContents { Fp32Contents = { new float[1200] } };
                break;
            case "no-data":
                break;
            case "no-inputs":
                request.Inputs.Clear();
                break;
            case "bad-datatype":
                input.Datatype = "FLOAT32";
                break;
        }

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(request, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(expected, error.Status.Detail);
    }

    [Fact]
    public async Task Missing_model_name_is_invalid_argument()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => Client.ModelMetadataAsync(new ModelMetadataRequest(), cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    internal static ModelInferRequest Typed(IEnumerable<IrisSample> rows)
    {
        var list = rows.ToList();
        return new ModelInferRequest
        {
            ModelName = "iris",
            Id = "grpc-1",
            Inputs =
            {
                new ModelInferRequest.Types.InferInputTensor
                {
                    Name = "features",
                    Datatype = "FP32",
                    Shape = { list.Count, 4 },
                    Contents = new InferTensorContents { Fp32Contents = { list.SelectMany(r => r.Features) } },
                },
            },
        };
    }

    internal static byte[] FloatBytes(IEnumerable<float> values) =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.ToArray().AsSpan()).ToArray();

    private static void AssertIrisOutputs(ModelInferResponse response, IReadOnlyList<IrisSample> rows)
    {
        Assert.Equal("iris", response.ModelName);
        Assert.Equal("1", response.ModelVersion);
        Assert.Equal(["probabilities", "label"], response.Outputs.Select(o => o.Name));
        Assert.Equal([rows.Count, 3L], response.Outputs[0].Shape);
        Assert.Equal(2, response.RawOutputContents.Count);
        var probabilities = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(response.RawOutputContents[0].Span).ToArray();
        var labels = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(response.RawOutputContents[1].Span).ToArray();
        for (var r = 0; r < rows.Count; r++)
        {
            var expected = TestModels.Iris.Model.PredictProbabilities(rows[r].Features);
            for (var c = 0; c < 3; c++)
            {
                Assert.Equal(expected[c], probabilities[(r * 3) + c], 1e-5f);
            }

            Assert.Equal(TestModels.Iris.Model.PredictLabel(rows[r].Features), labels[r]);
        }
    }
}

internal static class ModelInferRequestExtensions
{
    public static ModelInferRequest WithName(this ModelInferRequest request, string name)
    {
        request.ModelName = name;
        return request;
    }
}

using System.Runtime.InteropServices;
using Carml.Orleans.Core;
using Carml.Orleans.Gateway.KServe.Grpc;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Interfaces;
using Google.Protobuf;
using Grpc.Core;

namespace Carml.Orleans.Gateway.KServe;

/// <summary>
/// KServe v2 / Open Inference Protocol over gRPC (<c>inference.GRPCInferenceService</c>). Accepts typed
/// <c>contents</c> or <c>raw_input_contents</c>; answers with <c>raw_output_contents</c>, as Triton does.
/// Failures become status codes through <see cref="GrpcErrorInterceptor"/>.
/// </summary>
public sealed class KServeGrpcService(KServeServer server, ModelRouter router) : GRPCInferenceService.GRPCInferenceServiceBase
{
    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    public override async Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        new() { Ready = await server.IsReadyAsync(context.CancellationToken) };

    public override async Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context) =>
        new() { Ready = await server.IsModelReadyAsync(RequireName(request.Name), request.Version) };

    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerMetadataResponse
        {
            Name = server.Name,
            Version = KServeServer.Version,
            Extensions = { KServeServer.Extensions },
        });

    public override async Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context)
    {
        var metadata = await server.GetModelMetadataAsync(RequireName(request.Name), request.Version);
        return new ModelMetadataResponse
        {
            Name = metadata.Name,
            Versions = { metadata.Versions },
            Platform = metadata.Platform,
            Inputs = { metadata.Inputs.Select(ToMetadata) },
            Outputs = { metadata.Outputs.Select(ToMetadata) },
        };
    }

    /// <summary>The response parameters that carry the server-side time split (microseconds) and the batch size.</summary>
    public const string QueueTimeParameter = "queue_time_us";
    public const string ComputeTimeParameter = "compute_time_us";
    public const string BatchSizeParameter = "batch_size";

    /// <summary>The request parameter (as in Triton) that bounds how long the request may wait in the queue, in microseconds.</summary>
    public const string TimeoutParameter = "timeout";

    public override async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        var inference = ToInferenceRequest(request);
        Observability.TraceLevelParameter.Apply(request.Parameters);
        var timeout = RequestTimeout.Combine(TimeoutMicroseconds(request), context.Deadline, DateTime.UtcNow);
        if (timeout != inference.TimeoutMicroseconds)
        {
            inference = inference with { TimeoutMicroseconds = timeout };
        }

        var response = await router.InferAsync(RequireName(request.ModelName), request.ModelVersion, inference, context.CancellationToken);
        return ToProto(response);
    }

    private static long TimeoutMicroseconds(ModelInferRequest request)
    {
        if (!request.Parameters.TryGetValue(TimeoutParameter, out var parameter))
        {
            return 0;
        }

        var value = parameter.ParameterChoiceCase switch
        {
            InferParameter.ParameterChoiceOneofCase.Int64Param => parameter.Int64Param,
            InferParameter.ParameterChoiceOneofCase.Uint64Param when parameter.Uint64Param <= long.MaxValue => (long)parameter.Uint64Param,
            _ => -1,
        };
        return RequestTimeout.Validate(value, TimeoutParameter);
    }

    public static InferenceRequest ToInferenceRequest(ModelInferRequest request)
    {
        var raw = request.RawInputContents;
        if (raw.Count > 0 && raw.Count != request.Inputs.Count)
        {
            throw ModelException.InvalidArgument(
                $"raw_input_contents has {raw.Count} entries but the request has {request.Inputs.Count} inputs; give one per input, in order.");
        }

        if (request.Inputs.Count == 0)
        {
            throw ModelException.InvalidArgument("The request has no inputs.");
        }

        var inputs = new InferenceTensor[request.Inputs.Count];
        for (var i = 0; i < inputs.Length; i++)
        {
            var input = request.Inputs[i];
            var name = input.Name;
            if (string.IsNullOrEmpty(name))
            {
                throw ModelException.InvalidArgument($"inputs[{i}] has no name.");
            }

            if (!TensorDatatypes.TryParse(input.Datatype, out var datatype))
            {
                throw ModelException.InvalidArgument(
                    $"input '{name}': datatype '{input.Datatype}' is not a KServe v2 datatype ({string.Join(", ", TensorDatatypes.Names)})");
            }

            if (!datatype.IsSupported())
            {
                throw ModelException.InvalidArgument($"input '{name}': datatype {datatype.ToName()} is not supported yet");
            }

            var shape = input.Shape.ToArray();
            var count = TensorDatatypes.ElementCount(shape)
                ?? throw ModelException.InvalidArgument($"input '{name}': shape {TensorDatatypes.FormatShape(shape)} has a negative or too large dimension");

            byte[] data;
            if (raw.Count > 0)
            {
                if (input.Contents is not null)
                {
                    throw ModelException.InvalidArgument($"input '{name}': use raw_input_contents or contents, not both");
                }

                data = Bytes(raw[i]);
            }
            else if (input.Contents is not null)
            {
                data = FromContents(input.Contents, datatype, count, name);
            }
            else
            {
                throw ModelException.InvalidArgument($"input '{name}' has no data: set contents or raw_input_contents");
            }

            inputs[i] = new InferenceTensor(name, datatype, shape, data);
        }

        var requested = request.Outputs.Count > 0 ? request.Outputs.Select(o => o.Name).ToArray() : null;
        return new InferenceRequest(inputs, requested) { Id = string.IsNullOrEmpty(request.Id) ? null : request.Id };
    }

    public static ModelInferResponse ToProto(InferenceResponse response)
    {
        var proto = new ModelInferResponse
        {
            ModelName = response.ModelName,
            ModelVersion = response.ModelVersion,
            Id = response.Id ?? string.Empty,
        };
        foreach (var output in response.Outputs)
        {
            proto.Outputs.Add(new ModelInferResponse.Types.InferOutputTensor
            {
                Name = output.Name,
                Datatype = output.Datatype.ToName(),
                Shape = { output.Shape },
            });
            proto.RawOutputContents.Add(UnsafeByteOperations.UnsafeWrap(output.Data));
        }

        proto.Parameters.Add(QueueTimeParameter, new InferParameter { Int64Param = response.Timings.QueueMicroseconds });
        proto.Parameters.Add(ComputeTimeParameter, new InferParameter { Int64Param = response.Timings.ComputeMicroseconds });
        proto.Parameters.Add(BatchSizeParameter, new InferParameter { Int64Param = response.Timings.BatchSize });

        return proto;
    }

    /// <summary>The bytes behind a ByteString, without a copy when it owns a whole array (as parsed messages do).</summary>
    private static byte[] Bytes(ByteString bytes) =>
        MemoryMarshal.TryGetArray(bytes.Memory, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : bytes.ToByteArray();

    private static byte[] FromContents(InferTensorContents contents, TensorDatatype datatype, long count, string name)
    {
        byte[] data;
        long found;
        switch (datatype)
        {
            case TensorDatatype.Bool:
                found = contents.BoolContents.Count;
                data = contents.BoolContents.Select(b => b ? (byte)1 : (byte)0).ToArray();
                break;
            case TensorDatatype.Int8:
                found = contents.IntContents.Count;
                data = Narrow(contents.IntContents, sbyte.MinValue, sbyte.MaxValue, name, datatype, (v, s) => s[0] = (byte)(sbyte)v, 1);
                break;
            case TensorDatatype.Int16:
                found = contents.IntContents.Count;
                data = Narrow(contents.IntContents, short.MinValue, short.MaxValue, name, datatype, (v, s) => MemoryMarshal.Write(s, (short)v), 2);
                break;
            case TensorDatatype.Int32:
                found = contents.IntContents.Count;
                data = MemoryMarshal.AsBytes(contents.IntContents.ToArray().AsSpan()).ToArray();
                break;
            case TensorDatatype.Int64:
                found = contents.Int64Contents.Count;
                data = MemoryMarshal.AsBytes(contents.Int64Contents.ToArray().AsSpan()).ToArray();
                break;
            case TensorDatatype.UInt8:
                found = contents.UintContents.Count;
                data = Narrow(contents.UintContents.Select(v => (long)v).ToArray(), byte.MinValue, byte.MaxValue, name, datatype, (v, s) => s[0] = (byte)v, 1);
                break;
            case TensorDatatype.UInt16:
                found = contents.UintContents.Count;
                data = Narrow(contents.UintContents.Select(v => (long)v).ToArray(), ushort.MinValue, ushort.MaxValue, name, datatype, (v, s) => MemoryMarshal.Write(s, (ushort)v), 2);
                break;
            case TensorDatatype.UInt32:
                found = contents.UintContents.Count;
                data = MemoryMarshal.AsBytes(contents.UintContents.ToArray().AsSpan()).ToArray();
                break;
            case TensorDatatype.UInt64:
                found = contents.Uint64Contents.Count;
                data = MemoryMarshal.AsBytes(contents.Uint64Contents.ToArray().AsSpan()).ToArray();
                break;
            case TensorDatatype.FP32:
                found = contents.Fp32Contents.Count;
                data = MemoryMarshal.AsBytes(contents.Fp32Contents.ToArray().AsSpan()).ToArray();
                break;
            case TensorDatatype.FP64:
                found = contents.Fp64Contents.Count;
                data = MemoryMarshal.AsBytes(contents.Fp64Contents.ToArray().AsSpan()).ToArray();
                break;
            case TensorDatatype.FP16:
                throw ModelException.InvalidArgument($"input '{name}': FP16 has no typed contents field; send it in raw_input_contents");
            default:
                throw ModelException.InvalidArgument($"input '{name}': datatype {datatype.ToName()} is not supported yet");
        }

        if (found != count)
        {
            throw ModelException.InvalidArgument(
                $"input '{name}': {found} values in contents do not match its shape ({count} {datatype.ToName()} values expected)");
        }

        return data;
    }

    private static byte[] Narrow(IEnumerable<int> values, long min, long max, string name, TensorDatatype datatype, WriteElement write, int size) =>
        Narrow(values.Select(v => (long)v).ToArray(), min, max, name, datatype, write, size);

    private static byte[] Narrow(long[] values, long min, long max, string name, TensorDatatype datatype, WriteElement write, int size)
    {
        var data = new byte[values.Length * size];
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] < min || values[i] > max)
            {
                throw ModelException.InvalidArgument($"input '{name}': element {i} ({values[i]}) is out of range for {datatype.ToName()} ({min} to {max})");
            }

            write(values[i], data.AsSpan(i * size, size));
        }

        return data;
    }

    private delegate void WriteElement(long value, Span<byte> destination);

    private static ModelMetadataResponse.Types.TensorMetadata ToMetadata(TensorSpec spec) => new()
    {
        Name = spec.Name,
        Datatype = spec.Datatype.ToName(),
        Shape = { spec.Shape },
    };

    private static string RequireName(string name) =>
        string.IsNullOrEmpty(name) ? throw ModelException.InvalidArgument("The model name is required.") : name;
}

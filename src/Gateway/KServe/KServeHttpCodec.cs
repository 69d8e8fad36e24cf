using System.Buffers;
using System.Text.Json;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.KServe;

/// <summary>An HTTP inference request decoded, with how each output should come back.</summary>
public sealed record HttpInferRequest(InferenceRequest Request, bool BinaryOutputsByDefault, IReadOnlyDictionary<string, bool> BinaryOutputs)
{
    public bool IsBinary(string output) => BinaryOutputs.TryGetValue(output, out var binary) ? binary : BinaryOutputsByDefault;
}

/// <summary>
/// The KServe v2 HTTP body: a JSON inference header, optionally followed by binary tensor data
/// (the binary tensor data extension: <c>Inference-Header-Content-Length</c>, <c>binary_data_size</c>,
/// <c>binary_data_output</c>, <c>binary_data</c>).
/// </summary>
public static class KServeHttpCodec
{
    public const string HeaderLengthHeader = "Inference-Header-Content-Length";

    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64 };

    /// <summary>Decodes a request body; <paramref name="headerLength"/> is the JSON part's length when binary data follows.</summary>
    public static HttpInferRequest Decode(ReadOnlyMemory<byte> body, int? headerLength)
    {
        if (body.Length == 0)
        {
            throw ModelException.InvalidArgument("The request body is empty; send a JSON inference request.");
        }

        if (headerLength is { } length && (length <= 0 || length > body.Length))
        {
            throw ModelException.InvalidArgument(
                $"{HeaderLengthHeader} is {length}, but it must be between 1 and the body length {body.Length}.");
        }

        var json = headerLength is { } h ? body[..h] : body;
        var binary = headerLength is { } b ? body[b..] : ReadOnlyMemory<byte>.Empty;

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, DocumentOptions);
        }
        catch (JsonException e)
        {
            throw ModelException.InvalidArgument($"The request is not valid JSON: {e.Message}");
        }

        using (document)
        {
            return Decode(document.RootElement, binary);
        }
    }

    private static HttpInferRequest Decode(JsonElement root, ReadOnlyMemory<byte> binary)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw ModelException.InvalidArgument("The request must be a JSON object with an 'inputs' array.");
        }

        if (!root.TryGetProperty("inputs", out var inputsElement) || inputsElement.ValueKind != JsonValueKind.Array)
        {
            throw ModelException.InvalidArgument("The request needs an 'inputs' array.");
        }

        var inputs = new List<InferenceTensor>(inputsElement.GetArrayLength());
        var offset = 0;
        var index = 0;
        foreach (var input in inputsElement.EnumerateArray())
        {
            inputs.Add(DecodeInput(input, index++, binary, ref offset));
        }

        if (inputs.Count == 0)
        {
            throw ModelException.InvalidArgument("The request's 'inputs' array is empty.");
        }

        if (offset != binary.Length)
        {
            throw ModelException.InvalidArgument(
                $"The body has {binary.Length} bytes of binary tensor data after the JSON header, but the inputs' binary_data_size add up to {offset}.");
        }

        var hasParameters = root.TryGetProperty("parameters", out var parameters);
        var binaryByDefault = hasParameters && Bool(parameters, "binary_data_output", "parameters") == true;
        var timeout = hasParameters ? Timeout(parameters) : 0;

        var binaryOutputs = new Dictionary<string, bool>(StringComparer.Ordinal);
        List<string>? requested = null;
        if (root.TryGetProperty("outputs", out var outputsElement))
        {
            if (outputsElement.ValueKind != JsonValueKind.Array)
            {
                throw ModelException.InvalidArgument("'outputs' must be an array of {\"name\": ...} objects.");
            }

            requested = [];
            foreach (var output in outputsElement.EnumerateArray())
            {
                if (output.ValueKind != JsonValueKind.Object)
                {
                    throw ModelException.InvalidArgument("'outputs' items must be objects with a 'name'.");
                }

                var name = RequiredString(output, "name", "outputs[]");
                requested.Add(name);
                if (output.TryGetProperty("parameters", out var outputParameters)
                    && Bool(outputParameters, "binary_data", $"output '{name}' parameters") is { } isBinary)
                {
                    binaryOutputs[name] = isBinary;
                }
            }
        }

        var request = new InferenceRequest(inputs, requested)
        {
            Id = root.TryGetProperty("id", out var id) ? id.ValueKind == JsonValueKind.String
                ? id.GetString()
                : throw ModelException.InvalidArgument("'id' must be a string.") : null,
            TimeoutMicroseconds = timeout,
        };
        return new HttpInferRequest(request, binaryByDefault, binaryOutputs);
    }

    private static InferenceTensor DecodeInput(JsonElement input, int index, ReadOnlyMemory<byte> binary, ref int offset)
    {
        if (input.ValueKind != JsonValueKind.Object)
        {
            throw ModelException.InvalidArgument($"inputs[{index}] must be an object with name, shape, datatype and data.");
        }

        var name = RequiredString(input, "name", $"inputs[{index}]");
        var where = $"input '{name}'";
        var datatypeName = RequiredString(input, "datatype", where);
        if (!TensorDatatypes.TryParse(datatypeName, out var datatype))
        {
            throw ModelException.InvalidArgument($"{where}: datatype '{datatypeName}' is not a KServe v2 datatype ({string.Join(", ", TensorDatatypes.Names)})");
        }

        if (!input.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw ModelException.InvalidArgument($"{where}: 'shape' must be an array of non-negative integers");
        }

        var shape = new long[shapeElement.GetArrayLength()];
        var d = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out shape[d]) || shape[d] < 0)
            {
                throw ModelException.InvalidArgument($"{where}: shape dimension {d} ({dim.GetRawText()}) is not a non-negative integer");
            }

            d++;
        }

        var count = TensorDatatypes.ElementCount(shape)
            ?? throw ModelException.InvalidArgument($"{where}: shape {TensorDatatypes.FormatShape(shape)} is too large");
        if (!datatype.IsSupported())
        {
            throw ModelException.InvalidArgument($"{where}: datatype {datatype.ToName()} is not supported yet");
        }

        long? binarySize = null;
        if (input.TryGetProperty("parameters", out var parameters) && parameters.ValueKind == JsonValueKind.Object
            && parameters.TryGetProperty("binary_data_size", out var sizeElement))
        {
            if (sizeElement.ValueKind != JsonValueKind.Number || !sizeElement.TryGetInt64(out var size) || size < 0)
            {
                throw ModelException.InvalidArgument($"{where}: binary_data_size must be a non-negative integer");
            }

            binarySize = size;
        }

        byte[] data;
        if (binarySize is { } bytes)
        {
            if (input.TryGetProperty("data", out _))
            {
                throw ModelException.InvalidArgument($"{where}: give either 'data' or binary_data_size, not both");
            }

            if (bytes > binary.Length - offset)
            {
                throw ModelException.InvalidArgument(
                    $"{where}: binary_data_size {bytes} runs past the end of the body ({binary.Length - offset} bytes of binary data left)");
            }

            data = binary.Slice(offset, (int)bytes).ToArray();
            offset += (int)bytes;
        }
        else if (input.TryGetProperty("data", out var dataElement))
        {
            data = TensorCodec.FromJson(dataElement, datatype, count, name);
        }
        else
        {
            throw ModelException.InvalidArgument($"{where}: 'data' is required (or binary_data_size with binary tensor data)");
        }

        return new InferenceTensor(name, datatype, shape, data);
    }

    /// <summary>
    /// Writes the response: JSON only, or JSON followed by the binary outputs. Returns the JSON header's length when
    /// any output is binary (for <c>Inference-Header-Content-Length</c>), else null.
    /// </summary>
    public static int? Encode(IBufferWriter<byte> destination, InferenceResponse response, HttpInferRequest request)
    {
        var json = new ArrayBufferWriter<byte>(256);
        var anyBinary = false;
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            writer.WriteString("model_name", response.ModelName);
            writer.WriteString("model_version", response.ModelVersion);
            if (response.Id is { } id)
            {
                writer.WriteString("id", id);
            }

            writer.WriteStartArray("outputs");
            foreach (var output in response.Outputs)
            {
                writer.WriteStartObject();
                writer.WriteString("name", output.Name);
                writer.WriteString("datatype", output.Datatype.ToName());
                writer.WriteStartArray("shape");
                foreach (var dim in output.Shape)
                {
                    writer.WriteNumberValue(dim);
                }

                writer.WriteEndArray();
                if (request.IsBinary(output.Name))
                {
                    anyBinary = true;
                    writer.WriteStartObject("parameters");
                    writer.WriteNumber("binary_data_size", output.Data.Length);
                    writer.WriteEndObject();
                }
                else
                {
                    writer.WritePropertyName("data");
                    TensorCodec.WriteJson(writer, output.Datatype, output.Data);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteStartObject("parameters");
            writer.WriteNumber(KServeGrpcService.QueueTimeParameter, response.Timings.QueueMicroseconds);
            writer.WriteNumber(KServeGrpcService.ComputeTimeParameter, response.Timings.ComputeMicroseconds);
            writer.WriteNumber(KServeGrpcService.BatchSizeParameter, response.Timings.BatchSize);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        destination.Write(json.WrittenSpan);
        if (!anyBinary)
        {
            return null;
        }

        foreach (var output in response.Outputs)
        {
            if (request.IsBinary(output.Name))
            {
                destination.Write(output.Data);
            }
        }

        return json.WrittenCount;
    }

    /// <summary>The request's <c>timeout</c> parameter (microseconds it may wait in the queue, as in Triton); 0 when absent.</summary>
    private static long Timeout(JsonElement parameters)
    {
        if (parameters.ValueKind != JsonValueKind.Object || !parameters.TryGetProperty(KServeGrpcService.TimeoutParameter, out var value))
        {
            return 0;
        }

        return RequestTimeout.Validate(
            value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var timeout) ? timeout : -1,
            KServeGrpcService.TimeoutParameter);
    }

    private static string RequiredString(JsonElement element, string property, string where)
    {
        if (!element.TryGetProperty(property, out var value) || value.ValueKind != JsonValueKind.String
            || string.IsNullOrEmpty(value.GetString()))
        {
            throw ModelException.InvalidArgument($"{where}: '{property}' must be a non-empty string");
        }

        return value.GetString()!;
    }

    private static bool? Bool(JsonElement parameters, string property, string where)
    {
        if (parameters.ValueKind != JsonValueKind.Object || !parameters.TryGetProperty(property, out var value))
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ModelException.InvalidArgument($"{where}: '{property}' must be true or false"),
        };
    }
}

using Carml.Orleans.Onnx.Protobuf;

namespace Carml.Orleans.Onnx;

/// <summary>An operator set the model's nodes bind to; an empty domain is the default ONNX operator set.</summary>
public sealed record OnnxOperatorSetImport(string Domain, long Version);

/// <summary>
/// A complete ONNX model (<c>ModelProto</c>): a graph plus the IR version, operator sets and producer details
/// that runtimes check when loading. <see cref="ToBytes"/> gives the serialized <c>.onnx</c> file contents.
/// </summary>
public sealed record OnnxModel
{
    /// <summary>IR version 8 (ONNX 1.10+); ONNX Runtime 1.31 loads up to IR 11.</summary>
    public const long DefaultIrVersion = 8;

    /// <summary>Default ONNX operator set version (opset 13: Softmax and ArgMax with explicit axis semantics).</summary>
    public const long DefaultOpsetVersion = 13;

    public const string DefaultProducerName = "Carml.Orleans.Onnx";

    public OnnxModel(OnnxGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        Graph = graph;
    }

    public OnnxGraph Graph { get; init; }

    public long IrVersion { get; init; } = DefaultIrVersion;

    public IReadOnlyList<OnnxOperatorSetImport> OperatorSets { get; init; } = [new(string.Empty, DefaultOpsetVersion)];

    public string ProducerName { get; init; } = DefaultProducerName;

    public string ProducerVersion { get; init; } = "1.0";

    /// <summary>Reverse-DNS model namespace (<c>ModelProto.domain</c>); omitted when null.</summary>
    public string? Domain { get; init; }

    /// <summary><c>ModelProto.model_version</c>; omitted when null.</summary>
    public long? ModelVersion { get; init; }

    public string? DocString { get; init; }

    /// <summary>Free-form key/value metadata (<c>metadata_props</c>), written in this order; keys must be distinct.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; init; } = [];

    /// <summary>Serializes the model in protobuf wire format, exactly as an <c>.onnx</c> file stores it.</summary>
    public byte[] ToBytes()
    {
        ValidateMetadata();
        var message = new ModelProtoMessage(this);
        int size;
        try
        {
            size = message.CalculateSize();
        }
        catch (OverflowException e)
        {
            throw new InvalidOperationException(
                "The model is larger than 2 GiB, which needs ONNX external data; this writer stores everything inline.", e);
        }

        var writer = new ProtobufWriter(size);
        message.WriteTo(writer);
        return writer.DetachBuffer();
    }

    /// <summary>Writes <see cref="ToBytes"/> to a file, creating its directory when missing.</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        File.WriteAllBytes(path, ToBytes());
    }

    private void ValidateMetadata()
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, _) in Metadata)
        {
            if (!keys.Add(key))
            {
                throw new InvalidOperationException($"ONNX model metadata key '{key}' appears more than once.");
            }
        }
    }
}

namespace Carml.Orleans.Interfaces;

/// <summary>
/// A model's declaration: what it is, what it takes and returns, and where its file is.
/// Shapes include the batch dimension; -1 marks a variable dimension. When <see cref="MaxBatchSize"/> is
/// greater than zero the first dimension of every input and output is the batch dimension.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("carml.ModelManifest")]
public sealed record ModelManifest
{
    [Id(0)] public required string Name { get; init; }
    [Id(1)] public required string Version { get; init; }
    [Id(2)] public string Framework { get; init; } = ModelFrameworks.OnnxRuntime;
    [Id(3)] public string? Description { get; init; }
    [Id(4)] public string? License { get; init; }
    [Id(5)] public int MaxBatchSize { get; init; }
    [Id(6)] public required IReadOnlyList<TensorSpec> Inputs { get; init; }
    [Id(7)] public required IReadOnlyList<TensorSpec> Outputs { get; init; }
    [Id(8)] public ModelSource Source { get; init; } = new();
    [Id(9)] public IReadOnlyList<string> Labels { get; init; } = [];
    [Id(10)] public IReadOnlyDictionary<string, string> Attributes { get; init; } = new Dictionary<string, string>();

    public ModelId Id => new(Name, Version);
}

/// <summary>A named tensor with its element type and shape (-1 = variable).</summary>
[GenerateSerializer, Immutable]
[Alias("carml.TensorSpec")]
public sealed record TensorSpec(
    [property: Id(0)] string Name,
    [property: Id(1)] TensorDatatype Datatype,
    [property: Id(2)] IReadOnlyList<long> Shape)
{
    /// <summary>Set on an input of <c>type: image</c>: how the predictor API turns an image into this tensor.</summary>
    [Id(3)] public ImagePreprocessing? Image { get; init; }

    /// <summary>Set on an output of <c>type: classification</c>: how the predictor API turns it into labelled features.</summary>
    [Id(4)] public ClassificationPostprocessing? Classification { get; init; }
}

/// <summary>
/// Where the model file comes from: a path relative to the manifest (informational), a stored artifact's SHA-256,
/// a completed tus upload's id, or a URL (http, https, s3, allowed file roots) with an optional checksum. When the
/// file is an archive, <see cref="ArchivePath"/> names the model inside it (default: its only .onnx file).
/// </summary>
[GenerateSerializer, Immutable]
[Alias("carml.ModelSource")]
public sealed record ModelSource
{
    [Id(0)] public string? Path { get; init; }
    [Id(1)] public string? Sha256 { get; init; }
    [Id(2)] public string? Upload { get; init; }
    [Id(3)] public string? Url { get; init; }
    [Id(4)] public string? Checksum { get; init; }
    [Id(5)] public string? ArchivePath { get; init; }
}

public static class ModelFrameworks
{
    public const string OnnxRuntime = "onnxruntime";
}

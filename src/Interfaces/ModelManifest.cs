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

    /// <summary>How the replica queues and merges requests (manifest <c>dynamic_batching</c>); null = no merging.</summary>
    [Id(11)] public DynamicBatchingSettings? DynamicBatching { get; init; }

    /// <summary>Runtime settings of this model's sessions (manifest <c>runtime</c>); null = the silo's defaults.</summary>
    [Id(12)] public RuntimeSettings? Runtime { get; init; }

    /// <summary>Where and how many replicas serve this version (manifest <c>deployment</c>); null = the defaults.</summary>
    [Id(13)] public DeploymentSettings? Deployment { get; init; }

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

/// <summary>
/// The dynamic batcher of a model's replicas, after Triton's <c>dynamic_batching</c>: requests that arrive close
/// together are merged along the batch dimension, up to the manifest's <c>max_batch_size</c> rows.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("carml.DynamicBatchingSettings")]
public sealed record DynamicBatchingSettings
{
    /// <summary>False keeps the queue and its limits but runs every request on its own.</summary>
    [Id(0)] public bool Enabled { get; init; } = true;

    /// <summary>How long the oldest queued request may wait for more to join its batch; 0 = run what is queued at once.</summary>
    [Id(1)] public long MaxQueueDelayMicroseconds { get; init; }

    /// <summary>Batch sizes (rows) to dispatch as soon as they can be formed, without waiting for the delay.</summary>
    [Id(2)] public IReadOnlyList<int> PreferredBatchSizes { get; init; } = [];

    /// <summary>Requests that may wait in the queue; a request beyond it is refused with RESOURCE_EXHAUSTED. 0 = unbounded.</summary>
    [Id(3)] public int MaxQueueSize { get; init; }

    /// <summary>How long a request may wait in the queue when it brings no timeout of its own; 0 = no limit.</summary>
    [Id(4)] public long DefaultTimeoutMicroseconds { get; init; }
}

/// <summary>ONNX Runtime settings for one model; unset values fall back to the silo's <c>Carml:OnnxRuntime</c>.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.RuntimeSettings")]
public sealed record RuntimeSettings
{
    /// <summary>Threads one run may use (0 = the runtime's default, all cores).</summary>
    [Id(0)] public int? IntraOpThreads { get; init; }

    [Id(1)] public int? InterOpThreads { get; init; }

    /// <summary>Runs (batches) a replica executes at once; the rest wait in its queue.</summary>
    [Id(2)] public int? MaxConcurrentRuns { get; init; }
}

/// <summary>What a model's replicas need from a silo and how many of them serve it (manifest <c>deployment</c>).</summary>
[GenerateSerializer, Immutable]
[Alias("carml.DeploymentSettings")]
public sealed record DeploymentSettings
{
    /// <summary>
    /// <see cref="DeviceRequirement.Gpu"/>: only silos that advertise a GPU; <see cref="DeviceRequirement.Cpu"/>: any
    /// silo, run on CPU; <see cref="DeviceRequirement.Any"/>: prefer a GPU silo, fall back to CPU.
    /// </summary>
    [Id(0)] public DeviceRequirement Device { get; init; } = DeviceRequirement.Any;

    /// <summary>Free GPU memory (bytes) one GPU of the silo must have; 0 = no minimum.</summary>
    [Id(1)] public long MinGpuMemoryBytes { get; init; }

    /// <summary>How many replicas (separate activations, spread across eligible silos) serve the version.</summary>
    [Id(2)] public int Replicas { get; init; } = 1;

    /// <summary>Requests one replica accepts at once (queued plus running); 0 = bounded only by the batcher's queue.</summary>
    [Id(3)] public int MaxConcurrentRequests { get; init; }
}

/// <summary>The device a model's replicas need (manifest <c>deployment.device</c>).</summary>
[GenerateSerializer]
[Alias("carml.DeviceRequirement")]
public enum DeviceRequirement
{
    Any = 0,
    Cpu = 1,
    Gpu = 2,
}

public static class ModelFrameworks
{
    public const string OnnxRuntime = "onnxruntime";
}

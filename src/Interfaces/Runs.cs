namespace Carml.Orleans.Interfaces;

[GenerateSerializer]
[Alias("carml.RunKind")]
public enum RunKind
{
    Prediction = 1,
    Evaluation = 2,
}

[GenerateSerializer]
[Alias("carml.RunStatus")]
public enum RunStatus
{
    Running = 1,
    Succeeded = 2,
    Failed = 3,
    Cancelled = 4,
}

/// <summary>A tensor described without its data.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.TensorSummary")]
public sealed record TensorSummary(
    [property: Id(0)] string Name,
    [property: Id(1)] string Datatype,
    [property: Id(2)] IReadOnlyList<long> Shape,
    [property: Id(3)] long Bytes);

/// <summary>Time spent per stage, in microseconds (0 where a stage did not apply).</summary>
[GenerateSerializer, Immutable]
[Alias("carml.StageTimings")]
public sealed record StageTimings(
    [property: Id(0)] long QueueMicroseconds,
    [property: Id(1)] long PreprocessMicroseconds,
    [property: Id(2)] long InferMicroseconds,
    [property: Id(3)] long PostprocessMicroseconds,
    [property: Id(4)] long TotalMicroseconds);

/// <summary>What an evaluation measured.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.EvaluationResult")]
public sealed record EvaluationResult
{
    [Id(0)] public required string Dataset { get; init; }
    [Id(1)] public int BatchSize { get; init; }
    [Id(2)] public int Warmup { get; init; }
    [Id(3)] public int Repetitions { get; init; }
    [Id(4)] public long Samples { get; init; }
    [Id(5)] public long Correct { get; init; }
    [Id(6)] public long CorrectTop5 { get; init; }
    [Id(7)] public double Top1Accuracy { get; init; }
    [Id(8)] public double Top5Accuracy { get; init; }
    [Id(9)] public double LatencyP50Ms { get; init; }
    [Id(10)] public double LatencyP90Ms { get; init; }
    [Id(11)] public double LatencyP95Ms { get; init; }
    [Id(12)] public double LatencyP99Ms { get; init; }
    [Id(13)] public double LatencyMeanMs { get; init; }
    [Id(14)] public double ThroughputSamplesPerSecond { get; init; }

    /// <summary>Per measured batch: rows and milliseconds.</summary>
    [Id(15)] public IReadOnlyList<BatchTiming> Batches { get; init; } = [];
}

[GenerateSerializer, Immutable]
[Alias("carml.BatchTiming")]
public sealed record BatchTiming([property: Id(0)] int Rows, [property: Id(1)] double Milliseconds);

/// <summary>One prediction or evaluation, as users search and compare them.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.RunRecord")]
public sealed record RunRecord
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public RunKind Kind { get; init; }
    [Id(2)] public required string Model { get; init; }
    [Id(3)] public required string Version { get; init; }
    [Id(4)] public string? Agent { get; init; }
    [Id(5)] public string Device { get; init; } = "cpu";
    [Id(6)] public string? ExecutionProvider { get; init; }
    [Id(7)] public int BatchSize { get; init; }
    [Id(8)] public IReadOnlyList<TensorSummary> Inputs { get; init; } = [];
    [Id(9)] public IReadOnlyList<TensorSummary> Outputs { get; init; } = [];
    [Id(10)] public RunStatus Status { get; init; }
    [Id(11)] public string? Error { get; init; }
    [Id(12)] public StageTimings? Timings { get; init; }
    [Id(13)] public string? TraceId { get; init; }
    [Id(14)] public DateTimeOffset CreatedAt { get; init; }
    [Id(15)] public DateTimeOffset? FinishedAt { get; init; }
    [Id(16)] public string? Owner { get; init; }
    [Id(17)] public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    [Id(18)] public EvaluationResult? Evaluation { get; init; }

    /// <summary>Evaluation progress in [0, 1] while it runs.</summary>
    [Id(19)] public double Progress { get; init; }
}

/// <summary>A search over runs; every filter is optional. Ordered newest first; the page token continues a search.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.RunQuery")]
public sealed record RunQuery
{
    [Id(0)] public string? Model { get; init; }
    [Id(1)] public string? Version { get; init; }
    [Id(2)] public string? Agent { get; init; }
    [Id(3)] public RunStatus? Status { get; init; }
    [Id(4)] public RunKind? Kind { get; init; }
    [Id(5)] public DateTimeOffset? From { get; init; }
    [Id(6)] public DateTimeOffset? To { get; init; }
    [Id(7)] public KeyValuePair<string, string>? Label { get; init; }
    [Id(8)] public int PageSize { get; init; } = 50;
    [Id(9)] public string? PageToken { get; init; }

    /// <summary>Only runs of this owner (the gateway narrows non-admin searches to the caller's own runs).</summary>
    [Id(10)] public string? Owner { get; init; }
}

[GenerateSerializer, Immutable]
[Alias("carml.RunPage")]
public sealed record RunPage([property: Id(0)] IReadOnlyList<RunRecord> Runs, [property: Id(1)] string? NextPageToken);

/// <summary>What a client asks an evaluation to do.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.EvaluationRequest")]
public sealed record EvaluationRequest
{
    [Id(0)] public required string Model { get; init; }
    [Id(1)] public string? Version { get; init; }
    [Id(2)] public required string Dataset { get; init; }
    [Id(3)] public int BatchSize { get; init; } = 1;
    [Id(4)] public int Warmup { get; init; }
    [Id(5)] public int Repetitions { get; init; } = 1;

    /// <summary>The CSV column holding the label (default: the last column).</summary>
    [Id(6)] public string? LabelColumn { get; init; }

    /// <summary>The output holding class scores (default: the first output with a class dimension).</summary>
    [Id(7)] public string? Output { get; init; }
    [Id(8)] public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
    [Id(9)] public string? Owner { get; init; }
}

/// <summary>One evaluation: runs a model over a dataset and records what it measured. Key: the run id.</summary>
[Alias("carml.IEvaluationGrain")]
public interface IEvaluationGrain : IGrainWithStringKey
{
    /// <summary>Validates and starts the evaluation; returns at once with the running record.</summary>
    [Alias("Start")]
    Task<RunRecord> StartAsync(EvaluationRequest request);

    /// <summary>The record with its progress, or null when there is no such evaluation.</summary>
    [Alias("Get")]
    Task<RunRecord?> GetAsync();

    /// <summary>Stops a running evaluation; Conflict when it has already ended, NotFound when there is none.</summary>
    [Alias("Cancel")]
    Task<RunRecord> CancelAsync();
}

namespace Carml.Orleans.Interfaces;

/// <summary>How a predictor runs: requests per model call, how much it traces, and where it prefers to run.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.PredictorSettings")]
public sealed record PredictorSettings
{
    [Id(0)] public int BatchSize { get; init; } = 1;
    [Id(1)] public string TraceLevel { get; init; } = PredictorTraceLevels.None;
    [Id(2)] public string Device { get; init; } = PredictorDevices.Any;

    /// <summary>Top-k per input; 0 uses the manifest's feature_limit.</summary>
    [Id(3)] public int FeatureLimit { get; init; }
}

public static class PredictorTraceLevels
{
    public const string None = "none";
    public const string Application = "application";
    public const string Model = "model";
    public const string Framework = "framework";
    public const string Full = "full";
    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { None, Application, Model, Framework, Full };
}

public static class PredictorDevices
{
    public const string Any = "any";
    public const string Cpu = "cpu";
    public const string Gpu = "gpu";
    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { Any, Cpu, Gpu };
}

/// <summary>Running totals of a predictor since it was opened or last reset.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.PredictorUsage")]
public sealed record PredictorUsage
{
    [Id(0)] public long Requests { get; init; }
    [Id(1)] public long Inputs { get; init; }
    [Id(2)] public long Failures { get; init; }
    [Id(3)] public long DecodeMicroseconds { get; init; }
    [Id(4)] public long PreprocessMicroseconds { get; init; }
    [Id(5)] public long InferMicroseconds { get; init; }
    [Id(6)] public long PostprocessMicroseconds { get; init; }
    [Id(7)] public string? LastRequestId { get; init; }
}

/// <summary>An open predictor: the model version it serves, its settings and its usage.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.PredictorInfo")]
public sealed record PredictorInfo
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required ModelId Model { get; init; }

    /// <summary>The version as asked when opened (empty or <c>latest</c> re-resolves on Reset).</summary>
    [Id(2)] public string? RequestedVersion { get; init; }
    [Id(3)] public required PredictorSettings Settings { get; init; }
    [Id(4)] public DateTimeOffset OpenedAt { get; init; }
    [Id(5)] public DateTimeOffset LastUsedAt { get; init; }
    [Id(6)] public DateTimeOffset ExpiresAt { get; init; }
    [Id(7)] public PredictorUsage Usage { get; init; } = new();
    [Id(8)] public long Generation { get; init; }
}

/// <summary>
/// One predictor, keyed by its id. Not persistent: it lives while used and expires after
/// <c>Carml:Predictors:IdleTimeout</c> without a call. Every call on an unknown, closed or expired predictor is NotFound.
/// </summary>
[Alias("carml.IPredictorGrain")]
public interface IPredictorGrain : IGrainWithStringKey
{
    [Alias("Open")]
    Task<PredictorInfo> OpenAsync(ModelId model, string? requestedVersion, PredictorSettings settings);

    /// <summary>The predictor, refreshing its idle deadline; NotFound when unknown or expired.</summary>
    [Alias("Use")]
    Task<PredictorInfo> UseAsync();

    /// <summary>The predictor without touching its idle deadline; NotFound when unknown or expired.</summary>
    [Alias("Get")]
    Task<PredictorInfo> GetAsync();

    /// <summary>Adds a finished request to the usage totals.</summary>
    [Alias("Record")]
    Task RecordAsync(PredictorUsage request);

    /// <summary>Clears the usage, takes the given model version (re-resolved by the caller) and starts a new generation.</summary>
    [Alias("Reset")]
    Task<PredictorInfo> ResetAsync(ModelId model);

    /// <summary>Closes the predictor; false when it was unknown or already expired.</summary>
    [Alias("Close")]
    Task<bool> CloseAsync();
}

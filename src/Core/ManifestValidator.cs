using System.Text.RegularExpressions;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>Checks a manifest's content; returns every problem (empty when valid).</summary>
public static partial class ManifestValidator
{
    public const int MaxNameLength = 128;

    /// <summary>Versions that are not versions but words the API resolves.</summary>
    public static readonly IReadOnlySet<string> ReservedVersions = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { VersionSelector.Latest };

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    private static partial Regex IdentifierPattern();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();

    public static bool IsValidIdentifier(string value) =>
        value.Length is > 0 and <= MaxNameLength && IdentifierPattern().IsMatch(value);

    public static bool IsSha256(string value) => Sha256Pattern().IsMatch(value);

    public static IReadOnlyList<string> Validate(ModelManifest manifest)
    {
        var problems = new List<string>();
        if (manifest.Name.Length > 0 && !IsValidIdentifier(manifest.Name))
        {
            problems.Add($"name '{manifest.Name}' must be 1-{MaxNameLength} characters of letters, digits, '_', '.', '-', starting with a letter or digit");
        }

        if (manifest.Version.Length > 0 && !IsValidIdentifier(manifest.Version))
        {
            problems.Add($"version '{manifest.Version}' must be 1-{MaxNameLength} characters of letters, digits, '_', '.', '-', starting with a letter or digit");
        }
        else if (ReservedVersions.Contains(manifest.Version))
        {
            problems.Add($"version '{manifest.Version}' is reserved: it resolves to the highest registered version");
        }

        if (!string.Equals(manifest.Framework, ModelFrameworks.OnnxRuntime, StringComparison.OrdinalIgnoreCase))
        {
            problems.Add($"framework '{manifest.Framework}' is not supported (supported: {ModelFrameworks.OnnxRuntime})");
        }

        if (manifest.MaxBatchSize < 0)
        {
            problems.Add($"max_batch_size must be 0 (no batching) or positive, got {manifest.MaxBatchSize}");
        }

        ValidateTensors(manifest, manifest.Inputs, "inputs", problems);
        ValidateTensors(manifest, manifest.Outputs, "outputs", problems);

        if (manifest.Source.Sha256 is { Length: > 0 } sha256 && !IsSha256(sha256))
        {
            problems.Add($"source.sha256 '{sha256}' must be 64 hexadecimal characters");
        }

        var origins = new[] { manifest.Source.Sha256, manifest.Source.Upload, manifest.Source.Url }.Count(o => !string.IsNullOrEmpty(o));
        if (origins > 1)
        {
            problems.Add("source: give one of sha256, upload or url");
        }

        if (manifest.Source.Checksum is { Length: > 0 } && manifest.Source.Url is null)
        {
            problems.Add("source.checksum verifies a download: it needs source.url");
        }

        if (manifest.Source.Url is { Length: > 0 } url && !Uri.TryCreate(url, UriKind.Absolute, out _))
        {
            problems.Add($"source.url '{url}' is not an absolute URL");
        }

        if (manifest.Labels.Any(string.IsNullOrEmpty))
        {
            problems.Add("labels must not contain empty entries");
        }

        ValidateBatching(manifest, problems);
        ValidateRuntime(manifest.Runtime, problems);
        ValidateDeployment(manifest.Deployment, problems);
        ValidateProcessing(manifest, problems);

        return problems;
    }

    /// <summary>The most runs one replica may execute at once.</summary>
    public const int MaxConcurrentRuns = 256;

    /// <summary>Replicas one model version may ask for.</summary>
    public const int MaxReplicas = 64;

    private static void ValidateBatching(ModelManifest manifest, List<string> problems)
    {
        if (manifest.DynamicBatching is not { } batching)
        {
            return;
        }

        if (batching.Enabled && manifest.MaxBatchSize <= 0)
        {
            problems.Add("dynamic_batching needs max_batch_size > 0 (the most rows a merged batch may have), or enabled: false");
        }

        if (batching.MaxQueueDelayMicroseconds < 0)
        {
            problems.Add($"dynamic_batching.max_queue_delay_microseconds must be 0 or positive, got {batching.MaxQueueDelayMicroseconds}");
        }

        if (batching.MaxQueueSize < 0)
        {
            problems.Add($"dynamic_batching.max_queue_size must be 0 (unbounded) or positive, got {batching.MaxQueueSize}");
        }

        if (batching.DefaultTimeoutMicroseconds < 0)
        {
            problems.Add($"dynamic_batching.default_timeout_microseconds must be 0 (no limit) or positive, got {batching.DefaultTimeoutMicroseconds}");
        }

        var seen = new HashSet<int>();
        foreach (var size in batching.PreferredBatchSizes)
        {
            if (size < 1 || (manifest.MaxBatchSize > 0 && size > manifest.MaxBatchSize))
            {
                problems.Add($"dynamic_batching.preferred_batch_size {size} must be between 1 and max_batch_size {manifest.MaxBatchSize}");
            }
            else if (!seen.Add(size))
            {
                problems.Add($"dynamic_batching.preferred_batch_size {size} is listed twice");
            }
        }
    }

    private static void ValidateRuntime(RuntimeSettings? runtime, List<string> problems)
    {
        if (runtime is null)
        {
            return;
        }

        if (runtime.IntraOpThreads is < 0)
        {
            problems.Add($"runtime.intra_op_threads must be 0 (the runtime's default) or positive, got {runtime.IntraOpThreads}");
        }

        if (runtime.InterOpThreads is < 0)
        {
            problems.Add($"runtime.inter_op_threads must be 0 (the runtime's default) or positive, got {runtime.InterOpThreads}");
        }

        if (runtime.MaxConcurrentRuns is < 1 or > MaxConcurrentRuns)
        {
            problems.Add($"runtime.max_concurrent_runs must be between 1 and {MaxConcurrentRuns}, got {runtime.MaxConcurrentRuns}");
        }
    }

    private static void ValidateDeployment(DeploymentSettings? deployment, List<string> problems)
    {
        if (deployment is null)
        {
            return;
        }

        if (deployment.Replicas is < 1 or > MaxReplicas)
        {
            problems.Add($"deployment.replicas must be between 1 and {MaxReplicas}, got {deployment.Replicas}");
        }

        if (deployment.MaxConcurrentRequests < 0)
        {
            problems.Add($"deployment.max_concurrent_requests must be 0 (no limit) or positive, got {deployment.MaxConcurrentRequests}");
        }

        if (deployment.MinGpuMemoryBytes < 0)
        {
            problems.Add("deployment.min_gpu_memory_mb must not be negative");
        }

        if (deployment.MinGpuMemoryBytes > 0 && deployment.Device == DeviceRequirement.Cpu)
        {
            problems.Add("deployment.min_gpu_memory_mb needs device gpu or any, not cpu");
        }
    }

    private static void ValidateTensors(ModelManifest manifest, IReadOnlyList<TensorSpec> tensors, string kind, List<string> problems)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            var where = tensor.Name.Length > 0 ? $"{kind} '{tensor.Name}'" : kind;
            if (tensor.Name.Length > 0 && !seen.Add(tensor.Name))
            {
                problems.Add($"{where}: the name is used twice");
            }

            if (tensor.Datatype != default && !tensor.Datatype.IsSupported())
            {
                problems.Add($"{where}: datatype {tensor.Datatype.ToName()} is not supported for inference yet");
            }

            if (tensor.Shape.Count == 0 && manifest.MaxBatchSize > 0)
            {
                problems.Add($"{where}: a model with max_batch_size > 0 needs the batch dimension (-1) first in every shape");
            }

            foreach (var dim in tensor.Shape)
            {
                if (dim < -1)
                {
                    problems.Add($"{where}: shape dimension {dim} is invalid (use -1 for a variable dimension)");
                }
            }

            if (manifest.MaxBatchSize > 0 && tensor.Shape.Count > 0 && tensor.Shape[0] != -1)
            {
                problems.Add($"{where}: with max_batch_size {manifest.MaxBatchSize} the first dimension is the batch and must be -1, got {tensor.Shape[0]}");
            }
        }
    }
}

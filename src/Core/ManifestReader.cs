using System.Globalization;
using Carml.Orleans.Interfaces;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Carml.Orleans.Core;

/// <summary>
/// Reads a model manifest from YAML or JSON (JSON is read as YAML flow style) and validates it, reporting every
/// problem found in one <see cref="ModelException"/> rather than stopping at the first.
/// </summary>
public static partial class ManifestReader
{
    private static readonly HashSet<string> TopLevelKeys =
    [
        "name", "version", "framework", "description", "license", "max_batch_size", "inputs", "outputs", "source",
        "labels", "attributes", "dynamic_batching", "runtime", "deployment",
    ];

    private static readonly HashSet<string> BatchingKeys =
    [
        "enabled", "max_queue_delay_microseconds", "preferred_batch_size", "max_queue_size", "default_timeout_microseconds",
    ];

    private static readonly HashSet<string> RuntimeKeys = ["intra_op_threads", "inter_op_threads", "max_concurrent_runs"];

    private static readonly HashSet<string> DeploymentKeys = ["device", "min_gpu_memory_mb", "replicas", "max_concurrent_requests"];

    private static readonly HashSet<string> TensorKeys =
    [
        "name", "datatype", "shape", "type",
        "layout", "color_mode", "dimensions", "resize", "mean", "std", "scale", "pad_value", "element_type",
        "softmax", "feature_limit", "features_url", "features_sha256",
    ];
    private static readonly HashSet<string> SourceKeys = ["path", "sha256", "upload", "url", "checksum", "archive_path"];

    /// <summary>Parses and validates; throws <see cref="ModelException"/> (InvalidArgument) listing every problem.</summary>
    public static ModelManifest Parse(string text)
    {
        var problems = new List<string>();
        var manifest = TryRead(text, problems);
        if (manifest is not null)
        {
            problems.AddRange(ManifestValidator.Validate(manifest));
        }

        if (problems.Count > 0 || manifest is null)
        {
            throw Invalid(problems);
        }

        return manifest;
    }

    public static ModelException Invalid(IReadOnlyList<string> problems) => new(
        ModelErrorKind.InvalidArgument,
        $"Invalid model manifest: {string.Join("; ", problems)}",
        problems);

    private static ModelManifest? TryRead(string text, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            problems.Add("the manifest is empty");
            return null;
        }

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            problems.Add($"not valid YAML or JSON at line {e.Start.Line}, column {e.Start.Column}: {Describe(e)}");
            return null;
        }

        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            problems.Add("the manifest must be a single mapping (object) at the top level");
            return null;
        }

        var map = Mapping(root, "manifest", TopLevelKeys, problems);
        var name = RequiredString(map, "name", "manifest", problems);
        var version = RequiredString(map, "version", "manifest", problems);
        var framework = map.TryGetValue("framework", out var frameworkNode) ? FrameworkName(frameworkNode, problems) : null;
        var maxBatchSize = 0;
        if (map.TryGetValue("max_batch_size", out var batchNode))
        {
            var scalar = Scalar(batchNode, "max_batch_size", problems);
            if (scalar is not null && !int.TryParse(scalar, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out maxBatchSize))
            {
                problems.Add($"max_batch_size must be a whole number, got '{scalar}'");
            }
        }

        return new ModelManifest
        {
            Name = name ?? string.Empty,
            Version = version ?? string.Empty,
            Framework = framework ?? ModelFrameworks.OnnxRuntime,
            Description = OptionalString(map, "description", problems),
            License = OptionalString(map, "license", problems),
            MaxBatchSize = maxBatchSize,
            Inputs = Tensors(map, "inputs", problems),
            Outputs = Tensors(map, "outputs", problems),
            Source = Source(map, problems),
            Labels = Labels(map, problems),
            Attributes = Attributes(map, problems),
            DynamicBatching = DynamicBatching(map, problems),
            Deployment = Deployment(map, problems),
            Runtime = Runtime(map, problems),
        };
    }

    private static DynamicBatchingSettings? DynamicBatching(Dictionary<string, YamlNode> map, List<string> problems)
    {
        if (!map.TryGetValue("dynamic_batching", out var node))
        {
            return null;
        }

        if (node is not YamlMappingNode mapping)
        {
            // Triton writes "dynamic_batching { }" for the defaults; an empty YAML value means the same.
            if (node is YamlScalarNode { Value: null or "" })
            {
                return new DynamicBatchingSettings();
            }

            problems.Add("dynamic_batching must be a mapping (use {} for the defaults)");
            return null;
        }

        const string where = "dynamic_batching";
        var batching = Mapping(mapping, where, BatchingKeys, problems);
        var preferred = new List<int>();
        if (batching.TryGetValue("preferred_batch_size", out var preferredNode))
        {
            if (preferredNode is YamlSequenceNode sizes)
            {
                foreach (var size in sizes.Children)
                {
                    preferred.Add((int)Whole(size, $"{where}.preferred_batch_size", int.MinValue, int.MaxValue, problems));
                }
            }
            else
            {
                // A single size may be written without brackets.
                preferred.Add((int)Whole(preferredNode, $"{where}.preferred_batch_size", int.MinValue, int.MaxValue, problems));
            }
        }

        return new DynamicBatchingSettings
        {
            Enabled = OptionalBool(batching, "enabled", where, problems) ?? true,
            MaxQueueDelayMicroseconds = OptionalWhole(batching, "max_queue_delay_microseconds", where, long.MinValue, long.MaxValue, problems) ?? 0,
            PreferredBatchSizes = preferred,
            MaxQueueSize = (int)(OptionalWhole(batching, "max_queue_size", where, int.MinValue, int.MaxValue, problems) ?? 0),
            DefaultTimeoutMicroseconds = OptionalWhole(batching, "default_timeout_microseconds", where, long.MinValue, long.MaxValue, problems) ?? 0,
        };
    }

    private static RuntimeSettings? Runtime(Dictionary<string, YamlNode> map, List<string> problems)
    {
        if (!map.TryGetValue("runtime", out var node))
        {
            return null;
        }

        if (node is not YamlMappingNode mapping)
        {
            problems.Add("runtime must be a mapping with intra_op_threads, inter_op_threads or max_concurrent_runs");
            return null;
        }

        var runtime = Mapping(mapping, "runtime", RuntimeKeys, problems);
        return new RuntimeSettings
        {
            IntraOpThreads = (int?)OptionalWhole(runtime, "intra_op_threads", "runtime", int.MinValue, int.MaxValue, problems),
            InterOpThreads = (int?)OptionalWhole(runtime, "inter_op_threads", "runtime", int.MinValue, int.MaxValue, problems),
            MaxConcurrentRuns = (int?)OptionalWhole(runtime, "max_concurrent_runs", "runtime", int.MinValue, int.MaxValue, problems),
        };
    }

    private static DeploymentSettings? Deployment(Dictionary<string, YamlNode> map, List<string> problems)
    {
        if (!map.TryGetValue("deployment", out var node))
        {
            return null;
        }

        if (node is not YamlMappingNode mapping)
        {
            problems.Add("deployment must be a mapping with device, min_gpu_memory_mb, replicas or max_concurrent_requests");
            return null;
        }

        const string where = "deployment";
        var deployment = Mapping(mapping, where, DeploymentKeys, problems);
        var device = DeviceRequirement.Any;
        if (deployment.TryGetValue("device", out var deviceNode) && Scalar(deviceNode, "deployment.device", problems) is { } text)
        {
            device = text.ToLowerInvariant() switch
            {
                "any" => DeviceRequirement.Any,
                "cpu" => DeviceRequirement.Cpu,
                "gpu" or "cuda" => DeviceRequirement.Gpu,
                _ => Problem(problems, $"deployment.device must be gpu, cpu or any, got '{text}'", DeviceRequirement.Any),
            };
        }

        return new DeploymentSettings
        {
            Device = device,
            MinGpuMemoryBytes = (OptionalWhole(deployment, "min_gpu_memory_mb", where, 0, long.MaxValue / (1024 * 1024), problems) ?? 0) * 1024 * 1024,
            Replicas = (int)(OptionalWhole(deployment, "replicas", where, int.MinValue, int.MaxValue, problems) ?? 1),
            MaxConcurrentRequests = (int)(OptionalWhole(deployment, "max_concurrent_requests", where, int.MinValue, int.MaxValue, problems) ?? 0),
        };
    }

    private static T Problem<T>(List<string> problems, string problem, T value)
    {
        problems.Add(problem);
        return value;
    }

    private static long? OptionalWhole(Dictionary<string, YamlNode> map, string key, string where, long min, long max, List<string> problems) =>
        map.TryGetValue(key, out var node) ? Whole(node, $"{where}.{key}", min, max, problems) : null;

    private static long Whole(YamlNode node, string key, long min, long max, List<string> problems)
    {
        var text = Scalar(node, key, problems);
        if (text is null)
        {
            return 0;
        }

        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            problems.Add($"{key} must be a whole number, got '{text}'");
            return 0;
        }

        return value;
    }

    private static bool? OptionalBool(Dictionary<string, YamlNode> map, string key, string where, List<string> problems)
    {
        if (!map.TryGetValue(key, out var node))
        {
            return null;
        }

        var text = Scalar(node, $"{where}.{key}", problems);
        if (text is null)
        {
            return null;
        }

        if (bool.TryParse(text, out var value))
        {
            return value;
        }

        problems.Add($"{where}.{key} must be true or false, got '{text}'");
        return null;
    }

    private static Dictionary<string, YamlNode> Mapping(YamlMappingNode node, string where, HashSet<string> allowed, List<string> problems)
    {
        var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in node.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? string.Empty;
            if (!allowed.Contains(key))
            {
                problems.Add($"{where}: unknown field '{key}' (allowed: {string.Join(", ", allowed)})");
                continue;
            }

            if (!result.TryAdd(key, value))
            {
                problems.Add($"{where}: field '{key}' appears more than once");
            }
        }

        return result;
    }

    private static string? FrameworkName(YamlNode node, List<string> problems)
    {
        // CarML writes either "framework: onnxruntime" or "framework: { name: onnxruntime, version: ... }".
        if (node is YamlMappingNode mapping)
        {
            var map = Mapping(mapping, "framework", ["name", "version"], problems);
            return RequiredString(map, "name", "framework", problems);
        }

        return Scalar(node, "framework", problems);
    }

    private static IReadOnlyList<TensorSpec> Tensors(Dictionary<string, YamlNode> map, string key, List<string> problems)
    {
        if (!map.TryGetValue(key, out var node))
        {
            problems.Add($"{key} is required: list at least one tensor");
            return [];
        }

        if (node is not YamlSequenceNode sequence)
        {
            problems.Add($"{key} must be a list of tensors");
            return [];
        }

        var tensors = new List<TensorSpec>();
        for (var i = 0; i < sequence.Children.Count; i++)
        {
            var where = $"{key}[{i}]";
            if (sequence.Children[i] is not YamlMappingNode tensorNode)
            {
                problems.Add($"{where} must be a mapping with name, datatype and shape");
                continue;
            }

            var tensor = Mapping(tensorNode, where, TensorKeys, problems);
            var name = RequiredString(tensor, "name", where, problems) ?? string.Empty;
            if (name.Length > 0)
            {
                where = $"{key} '{name}'";
            }

            var datatypeName = RequiredString(tensor, "datatype", where, problems);
            var datatype = default(TensorDatatype);
            if (datatypeName is not null && !TensorDatatypes.TryParse(datatypeName, out datatype))
            {
                problems.Add($"{where}: datatype '{datatypeName}' is not a KServe v2 datatype ({string.Join(", ", TensorDatatypes.Names)})");
            }

            var shape = new List<long>();
            if (!tensor.TryGetValue("shape", out var shapeNode))
            {
                problems.Add($"{where}: shape is required (use -1 for variable dimensions)");
            }
            else if (shapeNode is not YamlSequenceNode dims)
            {
                problems.Add($"{where}: shape must be a list of integers");
            }
            else
            {
                foreach (var dim in dims.Children)
                {
                    var text = (dim as YamlScalarNode)?.Value;
                    if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
                    {
                        shape.Add(value);
                    }
                    else
                    {
                        problems.Add($"{where}: shape dimension '{text}' is not an integer");
                    }
                }
            }

            tensors.Add(WithProcessing(new TensorSpec(name, datatype, shape), tensor, where, problems));
        }

        return tensors;
    }

    private static ModelSource Source(Dictionary<string, YamlNode> map, List<string> problems)
    {
        if (!map.TryGetValue("source", out var node))
        {
            return new ModelSource();
        }

        if (node is not YamlMappingNode mapping)
        {
            problems.Add("source must be a mapping with 'path', 'sha256', 'upload' or 'url'");
            return new ModelSource();
        }

        var source = Mapping(mapping, "source", SourceKeys, problems);
        return new ModelSource
        {
            Path = OptionalString(source, "path", problems),
            Sha256 = OptionalString(source, "sha256", problems)?.ToLowerInvariant(),
            Upload = OptionalString(source, "upload", problems)?.ToLowerInvariant(),
            Url = OptionalString(source, "url", problems),
            Checksum = OptionalString(source, "checksum", problems),
            ArchivePath = OptionalString(source, "archive_path", problems),
        };
    }

    private static IReadOnlyList<string> Labels(Dictionary<string, YamlNode> map, List<string> problems)
    {
        if (!map.TryGetValue("labels", out var node))
        {
            return [];
        }

        if (node is not YamlSequenceNode sequence)
        {
            problems.Add("labels must be a list of strings");
            return [];
        }

        var labels = new List<string>();
        foreach (var item in sequence.Children)
        {
            var label = Scalar(item, "labels", problems);
            if (label is not null)
            {
                labels.Add(label);
            }
        }

        return labels;
    }

    private static IReadOnlyDictionary<string, string> Attributes(Dictionary<string, YamlNode> map, List<string> problems)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!map.TryGetValue("attributes", out var node))
        {
            return attributes;
        }

        if (node is not YamlMappingNode mapping)
        {
            problems.Add("attributes must be a mapping of names to values");
            return attributes;
        }

        foreach (var (key, value) in mapping.Children)
        {
            var name = (key as YamlScalarNode)?.Value ?? string.Empty;
            var text = Scalar(value, $"attributes.{name}", problems);
            if (text is not null)
            {
                attributes[name] = text;
            }
        }

        return attributes;
    }

    private static string? RequiredString(Dictionary<string, YamlNode> map, string key, string where, List<string> problems)
    {
        if (!map.TryGetValue(key, out var node))
        {
            problems.Add($"{where}: {key} is required");
            return null;
        }

        var value = Scalar(node, key, problems);
        if (value is not null && value.Length == 0)
        {
            problems.Add($"{where}: {key} must not be empty");
            return null;
        }

        return value;
    }

    private static string? OptionalString(Dictionary<string, YamlNode> map, string key, List<string> problems) =>
        map.TryGetValue(key, out var node) ? Scalar(node, key, problems) : null;

    private static string? Scalar(YamlNode node, string key, List<string> problems)
    {
        if (node is YamlScalarNode scalar)
        {
            return scalar.Value ?? string.Empty;
        }

        problems.Add($"{key} must be a single value, not a list or mapping");
        return null;
    }

    private static string Describe(YamlException e) =>
        (e.InnerException?.Message ?? e.Message).Split('\n')[0].Trim();
}

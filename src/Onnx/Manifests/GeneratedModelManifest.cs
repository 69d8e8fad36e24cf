using System.Globalization;
using System.Text;

namespace Carml.Orleans.Onnx.Manifests;

/// <summary>A tensor entry of a manifest: name, KServe v2 datatype (e.g. FP32) and shape, -1 for a variable size.</summary>
public sealed record ManifestTensor(string Name, string Datatype, IReadOnlyList<long> Shape)
{
    /// <summary>From a graph input or output; symbolic or unknown dimensions become -1.</summary>
    public static ManifestTensor FromValueInfo(OnnxValueInfo value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new ManifestTensor(value.Name, value.ElementType.ToManifestDatatype(), [.. value.Shape.Select(d => d.ToManifestSize())]);
    }
}

/// <summary>
/// A model manifest produced alongside a generated ONNX file, written as YAML by plain string building
/// (<see cref="ToYaml"/>) in the layout the server's manifest reader expects.
/// </summary>
public sealed record GeneratedModelManifest
{
    public required string Name { get; init; }

    public string Version { get; init; } = "1";

    public string Framework { get; init; } = "onnxruntime";

    public string? Description { get; init; }

    /// <summary>SPDX identifier of the model's (or its training data's) licence; omitted when null.</summary>
    public string? License { get; init; }

    public int MaxBatchSize { get; init; }

    public required IReadOnlyList<ManifestTensor> Inputs { get; init; }

    public required IReadOnlyList<ManifestTensor> Outputs { get; init; }

    /// <summary>Class names by label index; omitted when empty.</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];

    /// <summary>The model file, relative to the manifest; the <c>source</c> section is omitted when null.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Free-form string attributes; omitted when empty.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Attributes { get; init; } = [];

    public string ToYaml()
    {
        var yaml = new StringBuilder();
        yaml.Append("name: ").AppendLine(YamlScalar.Block(Name));
        yaml.Append("version: ").AppendLine(YamlScalar.Quoted(Version));
        yaml.Append("framework: ").AppendLine(YamlScalar.Block(Framework));
        if (Description is not null)
        {
            yaml.Append("description: ").AppendLine(YamlScalar.Block(Description));
        }

        if (License is not null)
        {
            yaml.Append("license: ").AppendLine(YamlScalar.Block(License));
        }

        yaml.Append("max_batch_size: ").AppendLine(MaxBatchSize.ToString(CultureInfo.InvariantCulture));
        AppendTensors(yaml, "inputs", Inputs);
        AppendTensors(yaml, "outputs", Outputs);
        if (Labels.Count > 0)
        {
            yaml.Append("labels: [").Append(string.Join(", ", Labels.Select(YamlScalar.Flow))).AppendLine("]");
        }

        if (SourcePath is not null)
        {
            yaml.AppendLine("source:");
            yaml.Append("  path: ").AppendLine(YamlScalar.Block(SourcePath));
        }

        if (Attributes.Count > 0)
        {
            yaml.AppendLine("attributes:");
            foreach (var (key, value) in Attributes)
            {
                yaml.Append("  ").Append(YamlScalar.Block(key)).Append(": ").AppendLine(YamlScalar.Quoted(value));
            }
        }

        return yaml.ToString();
    }

    /// <summary>Writes <see cref="ToYaml"/> to a file (UTF-8, no byte order mark), creating its directory.</summary>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        File.WriteAllText(path, ToYaml(), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    }

    private static void AppendTensors(StringBuilder yaml, string key, IReadOnlyList<ManifestTensor> tensors)
    {
        yaml.Append(key).AppendLine(":");
        foreach (var tensor in tensors)
        {
            yaml.Append("  - name: ").AppendLine(YamlScalar.Block(tensor.Name));
            yaml.Append("    datatype: ").AppendLine(YamlScalar.Block(tensor.Datatype));
            yaml.Append("    shape: [")
                .Append(string.Join(", ", tensor.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture))))
                .AppendLine("]");
        }
    }
}

/// <summary>Formats strings as YAML scalars: plain when that reads back as the same string, double-quoted otherwise.</summary>
internal static class YamlScalar
{
    private static readonly HashSet<string> ReservedWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    };

    /// <summary>A value in block context (after "key: ").</summary>
    public static string Block(string value) => CanBePlain(value, inFlow: false) ? value : Quoted(value);

    /// <summary>A value inside a flow sequence ("[a, b]"), where commas and brackets are also special.</summary>
    public static string Flow(string value) => CanBePlain(value, inFlow: true) ? value : Quoted(value);

    public static string Quoted(string value)
    {
        var quoted = new StringBuilder(value.Length + 2).Append('"');
        foreach (var character in value)
        {
            _ = character switch
            {
                '"' => quoted.Append("\\\""),
                '\\' => quoted.Append(@"\\"),
                '\n' => quoted.Append("\\n"),
                '\r' => quoted.Append("\\r"),
                '\t' => quoted.Append("\\t"),
                < ' ' => quoted.Append("\\x").Append(((int)character).ToString("X2", CultureInfo.InvariantCulture)),
                _ => quoted.Append(character),
            };
        }

        return quoted.Append('"').ToString();
    }

    private static bool CanBePlain(string value, bool inFlow)
    {
        if (value.Length == 0 || value.Trim().Length != value.Length || ReservedWords.Contains(value))
        {
            return false;
        }

        // Something that would read back as a number must be quoted to stay a string.
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _) || value.StartsWith('.') || value.StartsWith('-'))
        {
            return false;
        }

        if (value.Contains(": ", StringComparison.Ordinal) || value.Contains(" #", StringComparison.Ordinal) || value.EndsWith(':'))
        {
            return false;
        }

        foreach (var character in value)
        {
            var safe = char.IsAsciiLetterOrDigit(character) || character is ' ' or '_' or '.' or '-' or '/' or '(' or ')' or '\'' or '+' or ':'
                || (!inFlow && character == ',');
            if (!safe)
            {
                return false;
            }
        }

        return char.IsAsciiLetterOrDigit(value[0]) || value[0] is '_' or '/';
    }
}

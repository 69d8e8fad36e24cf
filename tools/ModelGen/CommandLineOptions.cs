using System.Globalization;

namespace Carml.Orleans.ModelGen;

/// <summary>A command-line mistake; reported with the usage text and exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The <c>--name value</c> options after a subcommand. Each option may appear once; options the subcommand does not
/// read are reported by <see cref="RejectUnread"/>.
/// </summary>
internal sealed class CommandLineOptions
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public CommandLineOptions(IReadOnlyList<string> arguments)
    {
        for (var i = 0; i < arguments.Count; i++)
        {
            var argument = arguments[i];
            if (!argument.StartsWith("--", StringComparison.Ordinal) || argument.Length == 2)
            {
                throw new UsageException($"unexpected argument '{argument}'; options look like --name value");
            }

            var name = argument[2..];
            string value;
            var equals = name.IndexOf('=', StringComparison.Ordinal);
            if (equals >= 0)
            {
                value = name[(equals + 1)..];
                name = name[..equals];
            }
            else if (i + 1 < arguments.Count && !arguments[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = arguments[++i];
            }
            else
            {
                throw new UsageException($"option --{name} needs a value");
            }

            if (!_values.TryAdd(name, value))
            {
                throw new UsageException($"option --{name} is given more than once");
            }
        }
    }

    public string Required(string name) =>
        Optional(name) ?? throw new UsageException($"option --{name} is required");

    public string? Optional(string name)
    {
        _read.Add(name);
        return _values.GetValueOrDefault(name);
    }

    public int RequiredPositiveInt(string name) => ParsePositiveInt(name, Required(name));

    public int OptionalInt(string name, int defaultValue)
    {
        var text = Optional(name);
        if (text is null)
        {
            return defaultValue;
        }

        return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new UsageException($"option --{name} must be a whole number, got '{text}'");
    }

    /// <summary>A comma-separated list of positive whole numbers, e.g. "64,64"; empty or "none" for no entries.</summary>
    public IReadOnlyList<int> OptionalPositiveIntList(string name)
    {
        var text = Optional(name);
        if (string.IsNullOrWhiteSpace(text) || text.Trim() == "none")
        {
            return [];
        }

        return [.. text.Split(',').Select(part => ParsePositiveInt(name, part.Trim()))];
    }

    public void RejectUnread()
    {
        var unknown = _values.Keys.Where(name => !_read.Contains(name)).Order(StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
        {
            throw new UsageException($"unknown option{(unknown.Count > 1 ? "s" : string.Empty)} {string.Join(", ", unknown.Select(n => "--" + n))}");
        }
    }

    private static int ParsePositiveInt(string name, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new UsageException($"option --{name} needs positive whole numbers, got '{text}'");
}

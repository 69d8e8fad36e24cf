namespace Carml.Orleans.Registry;

/// <summary>Where the registry's keys live. Section <c>Carml:Registry</c>.</summary>
public sealed class RegistryOptions
{
    public const string Section = "Carml:Registry";
    /// <summary>Prefix of every key; ends with '/'.</summary>
    public string Root { get; set; } = "carml/";

    /// <summary>The root, with exactly one trailing slash and no leading one.</summary>
    public static string NormalizeRoot(string root)
    {
        var trimmed = root.Trim().Trim('/');
        return trimmed.Length == 0 ? string.Empty : trimmed + "/";
    }

    internal static string Join(string root, string key) => NormalizeRoot(root) + key.TrimStart('/');

    /// <summary>A directory key: ends with '/', so <c>c1</c> never matches <c>c10</c>.</summary>
    internal static string Directory(string root, string directory)
    {
        var joined = Join(root, directory);
        return joined.EndsWith('/') ? joined : joined + "/";
    }
}

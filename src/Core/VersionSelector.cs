using System.Diagnostics.CodeAnalysis;

namespace Carml.Orleans.Core;

/// <summary>The one rule for version selectors: empty or <c>latest</c> (any case) means the highest registered version.</summary>
public static class VersionSelector
{
    public const string Latest = "latest";

    public static bool IsLatest([NotNullWhen(false)] string? version) =>
        string.IsNullOrEmpty(version) || version.Equals(Latest, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The concrete version <paramref name="requested"/> selects among <paramref name="registered"/> (sorted by
    /// <see cref="ModelVersionComparer"/>, as the catalog keeps them); null when it asks for the latest of none.
    /// </summary>
    public static string? Select(string? requested, IReadOnlyList<string> registered) =>
        IsLatest(requested) ? (registered.Count > 0 ? registered[^1] : null) : requested;
}

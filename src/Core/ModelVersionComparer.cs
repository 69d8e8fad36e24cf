namespace Carml.Orleans.Core;

/// <summary>
/// Orders model versions so that <c>latest</c> means the highest: dotted numeric versions compare numerically part by
/// part (2 &lt; 10, 1.2 &lt; 1.10); anything else compares ordinally, after numeric versions.
/// </summary>
public sealed class ModelVersionComparer : IComparer<string>
{
    public static ModelVersionComparer Instance { get; } = new();

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y))
        {
            return 0;
        }

        if (x is null)
        {
            return -1;
        }

        if (y is null)
        {
            return 1;
        }

        var xNumeric = TryParts(x, out var xParts);
        var yNumeric = TryParts(y, out var yParts);
        if (xNumeric && yNumeric)
        {
            for (var i = 0; i < Math.Max(xParts.Length, yParts.Length); i++)
            {
                var a = i < xParts.Length ? xParts[i] : 0;
                var b = i < yParts.Length ? yParts[i] : 0;
                if (a != b)
                {
                    return a.CompareTo(b);
                }
            }

            return string.CompareOrdinal(x, y);
        }

        if (xNumeric != yNumeric)
        {
            return xNumeric ? -1 : 1;
        }

        return string.CompareOrdinal(x, y);
    }

    private static bool TryParts(string version, out ulong[] parts)
    {
        var pieces = version.Split('.');
        parts = new ulong[pieces.Length];
        for (var i = 0; i < pieces.Length; i++)
        {
            if (!ulong.TryParse(pieces[i], System.Globalization.NumberStyles.None, null, out parts[i]))
            {
                return false;
            }
        }

        return true;
    }
}

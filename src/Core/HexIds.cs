namespace Carml.Orleans.Core;

/// <summary>The ids this server issues (uploads, predictors, runs) are lowercase hex of a fixed length.</summary>
public static class HexIds
{
    public static bool IsValid(string id, int length = 32) =>
        id.Length == length && id.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}

namespace Carml.Orleans.Core;

/// <summary>
/// Reads an enum member by its name only. <see cref="Enum.TryParse{TEnum}(string, bool, out TEnum)"/> also takes
/// numbers ("1") and comma lists ("a,b", OR-ed into another member), so a mistake silently selects something else.
/// </summary>
public static class EnumNames
{
    public static bool TryParse<T>(string? text, out T value) where T : struct, Enum
    {
        foreach (var member in Enum.GetValues<T>())
        {
            if (string.Equals(member.ToString(), text, StringComparison.OrdinalIgnoreCase))
            {
                value = member;
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>The member names in lower case, for messages that list what is accepted.</summary>
    public static string List<T>() where T : struct, Enum => string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()));
}

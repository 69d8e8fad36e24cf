using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>
/// Where run records live and are searched: the embedded store in standalone mode, PostgreSQL in cluster mode. Queries
/// run in the database with indexes, never over grains.
/// </summary>
public interface IRunStore
{
    /// <summary>Inserts or replaces runs (an evaluation is written when it starts and again when it ends).</summary>
    Task SaveAsync(IReadOnlyList<RunRecord> runs, CancellationToken cancellationToken);

    Task<RunRecord?> GetAsync(string id, CancellationToken cancellationToken);

    Task<RunPage> SearchAsync(RunQuery query, CancellationToken cancellationToken);
}

/// <summary>Run ids that sort by creation time, and the cursor format shared by the stores.</summary>
public static class RunIds
{
    public const int MaxPageSize = 500;

    /// <summary>A time-ordered id: 13 hex digits of Unix milliseconds, then 16 random hex digits.</summary>
    public static string New(DateTimeOffset now) =>
        now.ToUnixTimeMilliseconds().ToString("x13", System.Globalization.CultureInfo.InvariantCulture) + Guid.NewGuid().ToString("N")[..16];

    public static bool IsValid(string id) => HexIds.IsValid(id, 29);

    /// <summary>Opaque cursor after (created, id) in newest-first order.</summary>
    public static string Cursor(DateTimeOffset created, string id) =>
        PageTokens.Encode($"{created.UtcTicks}:{id}");

    public static (long CreatedTicks, string Id) ParseCursor(string token)
    {
        var text = PageTokens.Decode(token);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && long.TryParse(text[..colon], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ticks)
            && ticks <= DateTimeOffset.MaxValue.UtcTicks
            && IsValid(text[(colon + 1)..])
            ? (ticks, text[(colon + 1)..])
            : throw PageTokens.Invalid(token);
    }

    /// <summary>
    /// Reads one page from a query that selected the record JSON in newest-first order with a limit of one more than
    /// the page size: the extra row only says that another page follows.
    /// </summary>
    public static async Task<RunPage> ReadPageAsync(System.Data.Common.DbDataReader reader, int pageSize, CancellationToken cancellationToken)
    {
        var runs = new List<RunRecord>(pageSize + 1);
        while (await reader.ReadAsync(cancellationToken))
        {
            runs.Add(RunJson.Deserialize(reader.GetString(0)));
        }

        var more = runs.Count > pageSize;
        if (more)
        {
            runs.RemoveAt(runs.Count - 1);
        }

        return new RunPage(runs, more ? Cursor(runs[^1].CreatedAt, runs[^1].Id) : null);
    }

    public static void Validate(RunQuery query)
    {
        if (query.PageSize is < 1 or > MaxPageSize)
        {
            throw ModelException.InvalidArgument($"page_size must be between 1 and {MaxPageSize}, got {query.PageSize}.");
        }

        if (query.From > query.To)
        {
            throw ModelException.InvalidArgument("from must not be after to.");
        }
    }
}

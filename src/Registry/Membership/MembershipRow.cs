using System.Text.Json;
using System.Text.Json.Serialization;
using Orleans;
using Orleans.Runtime;

namespace Carml.Orleans.Registry.Membership;

/// <summary>A membership row as stored in Consul: readable JSON, so the table can be inspected in the Consul UI.</summary>
internal sealed record MembershipRow
{
    private static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public required string SiloAddress { get; init; }

    public required SiloStatus Status { get; init; }

    public int ProxyPort { get; init; }

    public string? HostName { get; init; }

    public string? SiloName { get; init; }

    public string? RoleName { get; init; }

    public int UpdateZone { get; init; }

    public int FaultZone { get; init; }

    public DateTime StartTime { get; init; }

    public DateTime IAmAliveTime { get; init; }

    public IReadOnlyList<SuspectVote>? SuspectTimes { get; init; }

    public static byte[] Serialize(MembershipEntry entry) => JsonSerializer.SerializeToUtf8Bytes(
        new MembershipRow
        {
            SiloAddress = entry.SiloAddress.ToParsableString(),
            Status = entry.Status,
            ProxyPort = entry.ProxyPort,
            HostName = entry.HostName,
            SiloName = entry.SiloName,
            RoleName = entry.RoleName,
            UpdateZone = entry.UpdateZone,
            FaultZone = entry.FaultZone,
            StartTime = entry.StartTime,
            IAmAliveTime = entry.IAmAliveTime,
            SuspectTimes = entry.SuspectTimes?.Select(vote => new SuspectVote(vote.Item1.ToParsableString(), vote.Item2)).ToArray(),
        },
        Json);

    /// <summary>Parses a stored row; throws <see cref="FormatException"/> when it is not a valid row.</summary>
    public static MembershipEntry Deserialize(byte[]? value)
    {
        if (value is null || value.Length == 0)
        {
            throw new FormatException("the value is empty");
        }

        MembershipRow? row;
        try
        {
            row = JsonSerializer.Deserialize<MembershipRow>(value, Json);
        }
        catch (JsonException e)
        {
            throw new FormatException(e.Message, e);
        }

        if (row is null || string.IsNullOrWhiteSpace(row.SiloAddress))
        {
            throw new FormatException("the row names no silo address");
        }

        try
        {
            return new MembershipEntry
            {
                SiloAddress = global::Orleans.Runtime.SiloAddress.FromParsableString(row.SiloAddress),
                Status = row.Status,
                ProxyPort = row.ProxyPort,
                HostName = row.HostName ?? string.Empty,
                SiloName = row.SiloName ?? string.Empty,
                RoleName = row.RoleName,
                UpdateZone = row.UpdateZone,
                FaultZone = row.FaultZone,
                StartTime = row.StartTime,
                IAmAliveTime = row.IAmAliveTime,
                SuspectTimes = row.SuspectTimes?.Select(vote => Tuple.Create(global::Orleans.Runtime.SiloAddress.FromParsableString(vote.Silo), vote.Time)).ToList(),
            };
        }
        catch (Exception e) when (e is FormatException or ArgumentException or IndexOutOfRangeException)
        {
            throw new FormatException($"a silo address is not valid: {e.Message}", e);
        }
    }

    internal sealed record SuspectVote(string Silo, DateTime Time);
}

/// <summary>The table version as stored: <c>{"Version": n}</c>.</summary>
internal sealed record StoredTableVersion(int Version)
{
    public static byte[] Serialize(int version) => JsonSerializer.SerializeToUtf8Bytes(new StoredTableVersion(version));

    public static int Deserialize(byte[]? value)
    {
        try
        {
            return value is { Length: > 0 } && JsonSerializer.Deserialize<StoredTableVersion>(value) is { } stored
                ? stored.Version
                : throw new FormatException("the value is empty");
        }
        catch (JsonException e)
        {
            throw new FormatException(e.Message, e);
        }
    }
}

using System.Globalization;
using System.Text;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Logging;
using Orleans;

namespace Carml.Orleans.Registry.Membership;

/// <summary>
/// Reads one cluster's whole table — rows, heartbeats and version — with a single recursive KV read, which Consul serves
/// from one snapshot, so rows and version are consistent. Malformed values are skipped with a warning.
/// </summary>
internal sealed partial class ConsulMembershipReader(ConsulClient consul, MembershipKeys keys, ILogger logger)
{
    public async Task<(MembershipTableData Table, IReadOnlyList<KvPair> Heartbeats)> ReadAsync(CancellationToken cancellationToken)
    {
        var pairs = (await consul.KvListAsync(keys.Cluster, null, cancellationToken).ConfigureAwait(false)).Value;
        var version = new TableVersion(0, "0");
        var heartbeats = new Dictionary<string, KvPair>(StringComparer.Ordinal);
        var rows = new List<KvPair>();
        foreach (var pair in pairs)
        {
            if (pair.Key == keys.Version)
            {
                try
                {
                    version = new TableVersion(StoredTableVersion.Deserialize(pair.Value), Etag(pair));
                }
                catch (FormatException e)
                {
                    // Keep the ModifyIndex as the ETag so the next writer can still replace the bad value by CAS.
                    LogMalformedValue(logger, pair.Key, e.Message);
                    version = new TableVersion(0, Etag(pair));
                }
            }
            else if (pair.Key.StartsWith(keys.Members, StringComparison.Ordinal))
            {
                rows.Add(pair);
            }
            else if (pair.Key.StartsWith(keys.IAmAlive, StringComparison.Ordinal))
            {
                heartbeats[pair.Key[keys.IAmAlive.Length..]] = pair;
            }
        }

        var members = new List<Tuple<MembershipEntry, string>>();
        foreach (var row in rows)
        {
            MembershipEntry entry;
            try
            {
                entry = MembershipRow.Deserialize(row.Value);
            }
            catch (FormatException e)
            {
                LogMalformedValue(logger, row.Key, e.Message);
                continue;
            }

            if (heartbeats.TryGetValue(row.Key[keys.Members.Length..], out var heartbeat) && ParseHeartbeat(heartbeat) is { } time && time > entry.IAmAliveTime)
            {
                entry.IAmAliveTime = time;
            }

            members.Add(Tuple.Create(entry, Etag(row)));
        }

        return (new MembershipTableData(members, version), heartbeats.Values.ToArray());
    }

    public static byte[] FormatHeartbeat(DateTime time) =>
        Encoding.UTF8.GetBytes(time.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture));

    public DateTime? ParseHeartbeat(KvPair pair)
    {
        var text = pair.Value is null ? string.Empty : Encoding.UTF8.GetString(pair.Value);
        if (DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var time))
        {
            return time;
        }

        LogMalformedValue(logger, pair.Key, "not an ISO 8601 time");
        return null;
    }

    public static string Etag(KvPair pair) => pair.ModifyIndex.ToString(CultureInfo.InvariantCulture);

    public static bool TryParseEtag(string? etag, out ulong index) =>
        ulong.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out index);

    [LoggerMessage(EventId = 5201, Level = LogLevel.Warning, Message = "Skipping the malformed membership value at {Key}: {Problem}")]
    private static partial void LogMalformedValue(ILogger logger, string key, string problem);
}

using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Configuration;
using Orleans.Runtime;

namespace Carml.Orleans.Registry.Membership;

/// <summary>
/// Orleans' membership table in Consul's KV store (layout in <see cref="MembershipKeys"/>). A row and the table version are
/// written in one <c>/v1/txn</c> with check-and-set on both, the ETags being Consul's ModifyIndex; heartbeats go to a
/// separate key so they never change a row's ETag. When Consul cannot be reached the calls fail and Orleans keeps serving
/// on the membership it last read, declaring nobody dead.
/// </summary>
public sealed partial class ConsulMembershipTable : IMembershipTable
{
    private const int MaxRowsPerCleanupTransaction = 32;

    private readonly ConsulClient _consul;
    private readonly ConsulClusteringOptions _options;
    private readonly ILogger<ConsulMembershipTable> _logger;
    private readonly TimeProvider _time;
    private readonly MembershipKeys _keys;
    private readonly ConsulMembershipReader _reader;

    public ConsulMembershipTable(
        ConsulClient consul,
        IOptions<ClusterOptions> clusterOptions,
        IOptions<ConsulClusteringOptions> options,
        ILogger<ConsulMembershipTable> logger,
        TimeProvider? time = null)
    {
        _consul = consul;
        _options = options.Value;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _keys = new MembershipKeys(_options.KeyRoot, clusterOptions.Value.ClusterId);
        _reader = new ConsulMembershipReader(consul, _keys, logger);
    }

    public MembershipKeys Keys => _keys;

    public Task InitializeMembershipTable(bool tryInitTableVersion) => InitializeMembershipTableAsync(tryInitTableVersion, CancellationToken.None);

    public Task InitializeMembershipTableAsync(bool tryInitTableVersion, CancellationToken cancellationToken) =>
        ConsulStartup.RetryUntilReachableAsync(
            _consul,
            _options.StartupTimeout,
            "the Orleans membership table",
            async ct =>
            {
                if (tryInitTableVersion)
                {
                    // cas=0: create the version key only if no silo created it yet.
                    var created = await _consul.KvPutAsync(_keys.Version, StoredTableVersion.Serialize(0), new KvWriteOptions { Cas = 0 }, ct).ConfigureAwait(false);
                    LogInitialized(_logger, _keys.Cluster, created);
                }
                else
                {
                    await _consul.KvGetAsync(_keys.Version, null, ct).ConfigureAwait(false);
                }
            },
            _logger,
            _time,
            cancellationToken);

    public Task DeleteMembershipTableEntries(string clusterId) => DeleteMembershipTableEntriesAsync(clusterId, CancellationToken.None);

    public async Task DeleteMembershipTableEntriesAsync(string clusterId, CancellationToken cancellationToken)
    {
        var keys = new MembershipKeys(_options.KeyRoot, clusterId);
        await _consul.KvDeleteAsync(keys.Cluster, recurse: true, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate) => CleanupDefunctSiloEntriesAsync(beforeDate, CancellationToken.None);

    public async Task CleanupDefunctSiloEntriesAsync(DateTimeOffset beforeDate, CancellationToken cancellationToken)
    {
        var (table, heartbeats) = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var before = beforeDate.UtcDateTime;
        var operations = new List<TxnKvOp>();
        foreach (var (entry, etag) in table.Members)
        {
            if (entry.Status == SiloStatus.Dead && entry.IAmAliveTime < before && ConsulMembershipReader.TryParseEtag(etag, out var index))
            {
                var silo = entry.SiloAddress.ToParsableString();
                operations.Add(TxnKvOp.DeleteIfIndex(_keys.Member(silo), index));
                operations.Add(TxnKvOp.Delete(_keys.IAmAliveOf(silo)));
            }
        }

        // Heartbeats whose row is gone (a silo heart-beating after its row was removed).
        var rows = table.Members.Select(member => member.Item1.SiloAddress.ToParsableString()).ToHashSet(StringComparer.Ordinal);
        foreach (var heartbeat in heartbeats)
        {
            var silo = heartbeat.Key[_keys.IAmAlive.Length..];
            if (!rows.Contains(silo) && (_reader.ParseHeartbeat(heartbeat) is not { } time || time < before))
            {
                operations.Add(TxnKvOp.DeleteIfIndex(heartbeat.Key, heartbeat.ModifyIndex));
            }
        }

        var removed = 0;
        foreach (var batch in operations.Chunk(MaxRowsPerCleanupTransaction * 2))
        {
            // A row that changed since the read (a CAS miss) stays; the next cleanup sees it again.
            var result = await _consul.TxnAsync(batch, cancellationToken).ConfigureAwait(false);
            removed += result.Committed ? batch.Count(op => op.Key.StartsWith(_keys.Members, StringComparison.Ordinal)) : 0;
        }

        LogCleanedUp(_logger, removed, beforeDate);
    }

    public Task<MembershipTableData> ReadRow(SiloAddress key) => ReadRowAsync(key, CancellationToken.None);

    public async Task<MembershipTableData> ReadRowAsync(SiloAddress key, CancellationToken cancellationToken)
    {
        var (table, _) = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var row = table.Members.Where(member => member.Item1.SiloAddress.Equals(key)).ToList();
        return new MembershipTableData(row, table.Version);
    }

    public Task<MembershipTableData> ReadAll() => ReadAllAsync(CancellationToken.None);

    public async Task<MembershipTableData> ReadAllAsync(CancellationToken cancellationToken) =>
        (await _reader.ReadAsync(cancellationToken).ConfigureAwait(false)).Table;

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => InsertRowAsync(entry, tableVersion, CancellationToken.None);

    public Task<bool> InsertRowAsync(MembershipEntry entry, TableVersion tableVersion, CancellationToken cancellationToken) =>
        WriteRowAsync(entry, rowIndex: 0, tableVersion, cancellationToken);

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) => UpdateRowAsync(entry, etag, tableVersion, CancellationToken.None);

    public Task<bool> UpdateRowAsync(MembershipEntry entry, string etag, TableVersion tableVersion, CancellationToken cancellationToken)
    {
        if (!ConsulMembershipReader.TryParseEtag(etag, out var rowIndex) || rowIndex == 0)
        {
            LogBadEtag(_logger, etag, entry.SiloAddress);
            return Task.FromResult(false);
        }

        return WriteRowAsync(entry, rowIndex, tableVersion, cancellationToken);
    }

    public Task UpdateIAmAlive(MembershipEntry entry) => UpdateIAmAliveAsync(entry, CancellationToken.None);

    public async Task UpdateIAmAliveAsync(MembershipEntry entry, CancellationToken cancellationToken)
    {
        // Orleans fills in only the address and the time: write the heartbeat key, never the row.
        await _consul.KvPutAsync(
            _keys.IAmAliveOf(entry.SiloAddress.ToParsableString()),
            ConsulMembershipReader.FormatHeartbeat(entry.IAmAliveTime),
            null,
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Row (CAS on <paramref name="rowIndex"/>, 0 = must not exist) and version (CAS on its ETag) in one transaction.</summary>
    private async Task<bool> WriteRowAsync(MembershipEntry entry, ulong rowIndex, TableVersion tableVersion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(tableVersion);
        if (!ConsulMembershipReader.TryParseEtag(tableVersion.VersionEtag, out var versionIndex))
        {
            LogBadEtag(_logger, tableVersion.VersionEtag, entry.SiloAddress);
            return false;
        }

        var silo = entry.SiloAddress.ToParsableString();
        var result = await _consul.TxnAsync(
            [
                TxnKvOp.CheckAndSet(_keys.Member(silo), MembershipRow.Serialize(entry), rowIndex),
                TxnKvOp.CheckAndSet(_keys.Version, StoredTableVersion.Serialize(tableVersion.Version), versionIndex),
                TxnKvOp.Set(_keys.IAmAliveOf(silo), ConsulMembershipReader.FormatHeartbeat(entry.IAmAliveTime)),
            ],
            cancellationToken).ConfigureAwait(false);
        if (!result.Committed)
        {
            LogWriteRejected(_logger, entry.SiloAddress, tableVersion, string.Join("; ", result.Errors.Select(e => e.What)));
        }

        return result.Committed;
    }

    [LoggerMessage(EventId = 5211, Level = LogLevel.Information, Message = "Membership table at {Prefix} ready (version key created: {Created})")]
    private static partial void LogInitialized(ILogger logger, string prefix, bool created);

    [LoggerMessage(EventId = 5212, Level = LogLevel.Debug, Message = "Membership write for {Silo} at table version {Version} rolled back: {Errors}")]
    private static partial void LogWriteRejected(ILogger logger, SiloAddress silo, TableVersion version, string errors);

    [LoggerMessage(EventId = 5213, Level = LogLevel.Warning, Message = "Membership write for {Silo} refused: ETag '{Etag}' is not a Consul index")]
    private static partial void LogBadEtag(ILogger logger, string etag, SiloAddress silo);

    [LoggerMessage(EventId = 5214, Level = LogLevel.Information, Message = "Removed {Count} defunct silo row(s) dead since before {Before}")]
    private static partial void LogCleanedUp(ILogger logger, int count, DateTimeOffset before);
}

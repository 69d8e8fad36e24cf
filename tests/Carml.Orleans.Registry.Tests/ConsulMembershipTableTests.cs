using System.Net;
using Carml.Orleans.Registry.Consul;
using Carml.Orleans.Registry.Membership;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Configuration;
using Orleans.Runtime;

namespace Carml.Orleans.Registry.Tests;

/// <summary>The membership-table cases Orleans holds its own providers to, against the Consul table.</summary>
public sealed class ConsulMembershipTableTests(ConsulTarget target) : IClassFixture<ConsulTarget>
{
    private static int _generation = 1000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly string _root = ConsulTarget.NewPrefix();
    private readonly string _clusterId = "c-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task Reading_an_empty_table_gives_no_members_and_version_zero()
    {
        var table = await CreateTableAsync();

        var data = await table.ReadAllAsync(Ct);

        Assert.Empty(data.Members);
        Assert.Equal(0, data.Version.Version);
        Assert.NotNull(data.Version.VersionEtag);
    }

    [Fact]
    public async Task Initializing_twice_keeps_the_version()
    {
        var table = await CreateTableAsync();
        var first = await table.ReadAllAsync(Ct);
        await table.InitializeMembershipTableAsync(true, Ct);

        Assert.Equal(first.Version.VersionEtag, (await table.ReadAllAsync(Ct)).Version.VersionEtag);
    }

    [Fact]
    public async Task Insert_adds_a_row_and_bumps_the_table_version()
    {
        var table = await CreateTableAsync();
        var data = await table.ReadAllAsync(Ct);
        var entry = NewEntry();

        Assert.True(await table.InsertRowAsync(entry, data.Version.Next(), Ct));

        var after = await table.ReadAllAsync(Ct);
        var (row, etag) = Assert.Single(after.Members);
        Assert.Equal(entry.SiloAddress, row.SiloAddress);
        Assert.Equal(SiloStatus.Joining, row.Status);
        Assert.Equal(entry.StartTime, row.StartTime);
        Assert.Equal(entry.HostName, row.HostName);
        Assert.Equal(entry.ProxyPort, row.ProxyPort);
        Assert.False(string.IsNullOrEmpty(etag));
        Assert.Equal(1, after.Version.Version);
        Assert.NotEqual(data.Version.VersionEtag, after.Version.VersionEtag);
    }

    [Fact]
    public async Task Inserting_the_same_silo_twice_fails()
    {
        var table = await CreateTableAsync();
        var entry = NewEntry();
        Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));

        Assert.False(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        Assert.Single((await table.ReadAllAsync(Ct)).Members);
    }

    [Fact]
    public async Task Insert_with_a_stale_table_version_fails_and_changes_nothing()
    {
        var table = await CreateTableAsync();
        var stale = (await table.ReadAllAsync(Ct)).Version;
        Assert.True(await table.InsertRowAsync(NewEntry(), stale.Next(), Ct));

        Assert.False(await table.InsertRowAsync(NewEntry(), stale.Next(), Ct));
        Assert.Single((await table.ReadAllAsync(Ct)).Members);
    }

    [Fact]
    public async Task Read_row_returns_that_silo_with_the_table_version()
    {
        var table = await CreateTableAsync();
        var entry = NewEntry();
        var other = NewEntry();
        Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        Assert.True(await table.InsertRowAsync(other, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));

        var row = await table.ReadRowAsync(entry.SiloAddress, Ct);

        Assert.Equal(entry.SiloAddress, Assert.Single(row.Members).Item1.SiloAddress);
        Assert.Equal(2, row.Version.Version);
        Assert.Empty((await table.ReadRowAsync(SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 1), 1), Ct)).Members);
    }

    [Fact]
    public async Task Update_with_the_right_etag_and_version_applies_and_a_wrong_etag_or_version_fails()
    {
        var table = await CreateTableAsync();
        var entry = NewEntry();
        Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        var data = await table.ReadAllAsync(Ct);
        var (row, etag) = data.Members[0];

        row.Status = SiloStatus.Active;
        Assert.False(await table.UpdateRowAsync(row, etag + "0", data.Version.Next(), Ct));
        Assert.False(await table.UpdateRowAsync(row, "not-an-etag", data.Version.Next(), Ct));
        Assert.False(await table.UpdateRowAsync(row, etag, new TableVersion(data.Version.Version + 1, data.Version.VersionEtag + "9"), Ct));
        Assert.Equal(SiloStatus.Joining, (await table.ReadAllAsync(Ct)).Members[0].Item1.Status);

        Assert.True(await table.UpdateRowAsync(row, etag, data.Version.Next(), Ct));
        var updated = await table.ReadAllAsync(Ct);
        Assert.Equal(SiloStatus.Active, updated.Members[0].Item1.Status);
        Assert.NotEqual(etag, updated.Members[0].Item2);
        Assert.Equal(data.Version.Version + 1, updated.Version.Version);

        // The old ETag is now stale.
        Assert.False(await table.UpdateRowAsync(row, etag, updated.Version.Next(), Ct));
    }

    [Fact]
    public async Task Suspect_times_round_trip()
    {
        var table = await CreateTableAsync();
        var entry = NewEntry();
        var voter = NewEntry().SiloAddress;
        var voted = new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        entry.SuspectTimes = [Tuple.Create(voter, voted)];

        Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));

        var vote = Assert.Single(Assert.Single((await table.ReadAllAsync(Ct)).Members).Item1.SuspectTimes!);
        Assert.Equal(voter, vote.Item1);
        Assert.Equal(voted, vote.Item2);
    }

    [Fact]
    public async Task Concurrent_updates_with_the_same_etag_let_exactly_one_win()
    {
        var table = await CreateTableAsync();
        Assert.True(await table.InsertRowAsync(NewEntry(), (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        var data = await table.ReadAllAsync(Ct);
        var (row, etag) = data.Members[0];

        var attempts = Enumerable.Range(0, 8).Select(i =>
        {
            var copy = Copy(row);
            copy.SiloName = "writer-" + i;
            return table.UpdateRowAsync(copy, etag, data.Version.Next(), Ct);
        }).ToArray();
        var results = await Task.WhenAll(attempts);

        Assert.Equal(1, results.Count(r => r));
        var winner = Array.IndexOf(results, true);
        Assert.Equal("writer-" + winner, (await table.ReadAllAsync(Ct)).Members[0].Item1.SiloName);
    }

    [Fact]
    public async Task IAmAlive_updates_the_time_without_changing_the_row_etag_or_the_table_version()
    {
        var table = await CreateTableAsync();
        var entry = NewEntry();
        Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        var before = await table.ReadAllAsync(Ct);
        var alive = before.Members[0].Item1.IAmAliveTime.AddMinutes(5);

        // The runtime sends only the address and the time.
        await table.UpdateIAmAliveAsync(new MembershipEntry { SiloAddress = entry.SiloAddress, IAmAliveTime = alive }, Ct);

        var after = await table.ReadAllAsync(Ct);
        var (row, etag) = Assert.Single(after.Members);
        Assert.Equal(alive, row.IAmAliveTime);
        Assert.Equal(before.Members[0].Item2, etag);
        Assert.Equal(before.Version, after.Version);
        Assert.Equal(entry.HostName, row.HostName);
        Assert.Equal(SiloStatus.Joining, row.Status);

        // The unchanged ETag still allows the next update.
        row.Status = SiloStatus.Active;
        Assert.True(await table.UpdateRowAsync(row, etag, after.Version.Next(), Ct));
    }

    [Fact]
    public async Task Cleanup_removes_only_dead_silos_older_than_the_date()
    {
        var table = await CreateTableAsync();
        var oldDead = NewEntry(SiloStatus.Dead, daysAgo: 10);
        var oldActive = NewEntry(SiloStatus.Active, daysAgo: 10);
        var newDead = NewEntry(SiloStatus.Dead, daysAgo: 0);
        var newActive = NewEntry(SiloStatus.Active, daysAgo: 0);
        foreach (var entry in new[] { oldDead, oldActive, newDead, newActive })
        {
            Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        }

        var before = await table.ReadAllAsync(Ct);
        await table.CleanupDefunctSiloEntriesAsync(DateTimeOffset.UtcNow.AddDays(-3), Ct);

        var after = await table.ReadAllAsync(Ct);
        Assert.Equal(
            new[] { oldActive, newDead, newActive }.Select(e => e.SiloAddress.ToParsableString()).Order(),
            after.Members.Select(m => m.Item1.SiloAddress.ToParsableString()).Order());
        Assert.Equal(before.Version, after.Version);

        await table.CleanupDefunctSiloEntriesAsync(DateTimeOffset.UtcNow.AddDays(-3), Ct);
        Assert.Equal(3, (await table.ReadAllAsync(Ct)).Members.Count);
    }

    [Fact]
    public async Task Delete_entries_removes_only_that_cluster_even_when_another_id_starts_the_same()
    {
        var table = await CreateTableAsync(_clusterId + "1");
        var longer = await CreateTableAsync(_clusterId + "10");
        Assert.True(await table.InsertRowAsync(NewEntry(), (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        Assert.True(await longer.InsertRowAsync(NewEntry(), (await longer.ReadAllAsync(Ct)).Version.Next(), Ct));

        Assert.Single((await table.ReadAllAsync(Ct)).Members);
        await table.DeleteMembershipTableEntriesAsync(_clusterId + "1", Ct);

        Assert.Empty((await table.ReadAllAsync(Ct)).Members);
        Assert.Single((await longer.ReadAllAsync(Ct)).Members);
    }

    [Fact]
    public async Task Gateway_list_has_the_proxy_endpoints_of_active_silos_only()
    {
        var table = await CreateTableAsync();
        var active = NewEntry(SiloStatus.Active);
        active.ProxyPort = 30001;
        var joining = NewEntry(SiloStatus.Joining);
        joining.ProxyPort = 30002;
        var noProxy = NewEntry(SiloStatus.Active);
        noProxy.ProxyPort = 0;
        foreach (var entry in new[] { active, joining, noProxy })
        {
            Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        }

        var provider = CreateGatewayList(target.CreateClient());
        await provider.InitializeGatewayListProviderAsync(Ct);
        var gateways = await provider.GetGatewaysAsync(Ct);

        var gateway = Assert.Single(gateways);
        Assert.Equal(30001, gateway.Port);
        Assert.Equal(SiloAddress.New(new IPEndPoint(active.SiloAddress.Endpoint.Address, 30001), active.SiloAddress.Generation).ToGatewayUri(), gateway);
        Assert.True(provider.IsUpdatable);
    }

    [Fact]
    public async Task A_malformed_row_is_skipped_and_the_rest_of_the_table_still_reads()
    {
        var table = await CreateTableAsync();
        var entry = NewEntry(SiloStatus.Active);
        Assert.True(await table.InsertRowAsync(entry, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        var consul = target.CreateClient();
        await consul.KvPutAsync(table.Keys.Member("127.0.0.1:1@1"), ConsulTarget.Bytes("{not json"), null, Ct);
        await consul.KvPutAsync(table.Keys.Member("bogus"), ConsulTarget.Bytes("{\"SiloAddress\":\"nonsense\",\"Status\":\"Active\"}"), null, Ct);
        await consul.KvPutAsync(table.Keys.IAmAliveOf(entry.SiloAddress.ToParsableString()), ConsulTarget.Bytes("yesterday-ish"), null, Ct);

        var data = await table.ReadAllAsync(Ct);

        Assert.Equal(entry.SiloAddress, Assert.Single(data.Members).Item1.SiloAddress);
        Assert.Single(await CreateGatewayList(consul).GetGatewaysAsync(Ct));
    }

    [Fact]
    public async Task A_malformed_version_is_skipped_and_a_writer_can_still_replace_it()
    {
        var table = await CreateTableAsync();
        var consul = target.CreateClient();
        await consul.KvPutAsync(table.Keys.Version, ConsulTarget.Bytes("garbage"), null, Ct);

        var data = await table.ReadAllAsync(Ct);

        Assert.Equal(0, data.Version.Version);
        Assert.True(await table.InsertRowAsync(NewEntry(), data.Version.Next(), Ct));
        Assert.Equal(1, (await table.ReadAllAsync(Ct)).Version.Version);
    }

    private async Task<ConsulMembershipTable> CreateTableAsync(string? clusterId = null)
    {
        var table = new ConsulMembershipTable(
            target.CreateClient(),
            Options.Create(new ClusterOptions { ClusterId = clusterId ?? _clusterId, ServiceId = "carml-test" }),
            Options.Create(new ConsulClusteringOptions { KeyRoot = _root, StartupTimeout = TimeSpan.FromSeconds(5) }),
            NullLogger<ConsulMembershipTable>.Instance);
        await table.InitializeMembershipTableAsync(true, Ct);
        return table;
    }

    private ConsulGatewayListProvider CreateGatewayList(ConsulClient consul) => new(
        consul,
        Options.Create(new ClusterOptions { ClusterId = _clusterId, ServiceId = "carml-test" }),
        Options.Create(new ConsulClusteringOptions { KeyRoot = _root, StartupTimeout = TimeSpan.FromSeconds(5) }),
        Options.Create(new GatewayOptions()),
        NullLogger<ConsulGatewayListProvider>.Instance);

    internal static MembershipEntry NewEntry(SiloStatus status = SiloStatus.Joining, int daysAgo = 0)
    {
        var now = DateTime.UtcNow;
        var seconds = new DateTime(now.Year, now.Month, now.Day, now.Hour, now.Minute, now.Second, DateTimeKind.Utc).AddDays(-daysAgo);
        var address = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 12345), Interlocked.Increment(ref _generation));
        return new MembershipEntry
        {
            SiloAddress = address,
            HostName = "test-host",
            SiloName = "TestSiloName",
            Status = status,
            ProxyPort = 12345,
            StartTime = seconds,
            IAmAliveTime = seconds,
        };
    }

    private static MembershipEntry Copy(MembershipEntry entry) => new()
    {
        SiloAddress = entry.SiloAddress,
        HostName = entry.HostName,
        SiloName = entry.SiloName,
        Status = entry.Status,
        ProxyPort = entry.ProxyPort,
        StartTime = entry.StartTime,
        IAmAliveTime = entry.IAmAliveTime,
    };
}

using Carml.Orleans.Registry.Consul;
using static Carml.Orleans.Registry.Tests.ConsulTarget;

namespace Carml.Orleans.Registry.Tests;

/// <summary>The Consul HTTP API as the client sees it: run against the emulator, or a real agent with CONSUL_HTTP_ADDR.</summary>
public sealed class ConsulClientConformanceTests(ConsulTarget target) : IClassFixture<ConsulTarget>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly ConsulClient _consul = target.CreateClient();
    private readonly string _prefix = NewPrefix();

    [Fact]
    public async Task Put_then_get_returns_the_value_flags_and_indexes()
    {
        Assert.True(await _consul.KvPutAsync(_prefix + "a", Bytes("one"), new KvWriteOptions { Flags = 42 }, Ct));

        var read = await _consul.KvGetAsync(_prefix + "a", null, Ct);

        Assert.NotNull(read.Value);
        Assert.Equal("one", Text(read.Value.Value));
        Assert.Equal(42UL, read.Value.Flags);
        Assert.True(read.Value.CreateIndex > 0);
        Assert.Equal(read.Value.CreateIndex, read.Value.ModifyIndex);
        Assert.True(read.Index >= read.Value.ModifyIndex);
    }

    [Fact]
    public async Task Get_of_a_missing_key_is_null_with_an_index()
    {
        var read = await _consul.KvGetAsync(_prefix + "missing", null, Ct);

        Assert.Null(read.Value);
        Assert.True(read.Index > 0);
    }

    [Fact]
    public async Task Overwriting_a_key_moves_its_modify_index_but_not_its_create_index()
    {
        await _consul.KvPutAsync(_prefix + "k", Bytes("1"), null, Ct);
        var first = (await _consul.KvGetAsync(_prefix + "k", null, Ct)).Value!;
        await _consul.KvPutAsync(_prefix + "k", Bytes("2"), null, Ct);
        var second = (await _consul.KvGetAsync(_prefix + "k", null, Ct)).Value!;

        Assert.Equal(first.CreateIndex, second.CreateIndex);
        Assert.True(second.ModifyIndex > first.ModifyIndex);
    }

    [Fact]
    public async Task Cas_zero_creates_only_when_the_key_is_absent()
    {
        Assert.True(await _consul.KvPutAsync(_prefix + "c", Bytes("first"), new KvWriteOptions { Cas = 0 }, Ct));
        Assert.False(await _consul.KvPutAsync(_prefix + "c", Bytes("second"), new KvWriteOptions { Cas = 0 }, Ct));

        Assert.Equal("first", Text((await _consul.KvGetAsync(_prefix + "c", null, Ct)).Value!.Value));
    }

    [Fact]
    public async Task Cas_with_a_stale_index_is_refused_and_with_the_current_index_applies()
    {
        await _consul.KvPutAsync(_prefix + "c", Bytes("v1"), null, Ct);
        var current = (await _consul.KvGetAsync(_prefix + "c", null, Ct)).Value!;

        Assert.False(await _consul.KvPutAsync(_prefix + "c", Bytes("stale"), new KvWriteOptions { Cas = current.ModifyIndex - 1 }, Ct));
        Assert.True(await _consul.KvPutAsync(_prefix + "c", Bytes("v2"), new KvWriteOptions { Cas = current.ModifyIndex }, Ct));
        Assert.False(await _consul.KvPutAsync(_prefix + "c", Bytes("v3"), new KvWriteOptions { Cas = current.ModifyIndex }, Ct));
        Assert.Equal("v2", Text((await _consul.KvGetAsync(_prefix + "c", null, Ct)).Value!.Value));
    }

    [Fact]
    public async Task Recurse_lists_a_prefix_in_key_order_and_a_trailing_slash_keeps_c1_apart_from_c10()
    {
        await _consul.KvPutAsync(_prefix + "c1/b", Bytes("b"), null, Ct);
        await _consul.KvPutAsync(_prefix + "c1/a", Bytes("a"), null, Ct);
        await _consul.KvPutAsync(_prefix + "c10/a", Bytes("other"), null, Ct);

        var withSlash = (await _consul.KvListAsync(_prefix + "c1/", null, Ct)).Value;
        var withoutSlash = (await _consul.KvListAsync(_prefix + "c1", null, Ct)).Value;

        Assert.Equal([_prefix + "c1/a", _prefix + "c1/b"], withSlash.Select(p => p.Key));
        Assert.Equal(3, withoutSlash.Count);
    }

    [Fact]
    public async Task Keys_with_a_separator_fold_subdirectories()
    {
        await _consul.KvPutAsync(_prefix + "d/x", [], null, Ct);
        await _consul.KvPutAsync(_prefix + "d/sub/y", [], null, Ct);
        await _consul.KvPutAsync(_prefix + "d/sub/z", [], null, Ct);

        var keys = (await _consul.KvKeysAsync(_prefix + "d/", "/", null, Ct)).Value;

        Assert.Equal([_prefix + "d/sub/", _prefix + "d/x"], keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Delete_with_recurse_removes_the_prefix_and_cas_delete_needs_the_current_index()
    {
        await _consul.KvPutAsync(_prefix + "t/a", [], null, Ct);
        await _consul.KvPutAsync(_prefix + "t/b", [], null, Ct);
        await _consul.KvPutAsync(_prefix + "keep", Bytes("x"), null, Ct);
        var keep = (await _consul.KvGetAsync(_prefix + "keep", null, Ct)).Value!;

        Assert.True(await _consul.KvDeleteAsync(_prefix + "t/", recurse: true, cancellationToken: Ct));
        Assert.False(await _consul.KvDeleteAsync(_prefix + "keep", cas: keep.ModifyIndex + 1000, cancellationToken: Ct));
        Assert.True(await _consul.KvDeleteAsync(_prefix + "keep", cas: keep.ModifyIndex, cancellationToken: Ct));

        Assert.Empty((await _consul.KvListAsync(_prefix, null, Ct)).Value);
    }

    [Fact]
    public async Task A_blocking_query_returns_when_the_key_changes()
    {
        await _consul.KvPutAsync(_prefix + "w", Bytes("before"), null, Ct);
        var initial = await _consul.KvGetAsync(_prefix + "w", null, Ct);

        var blocked = _consul.KvGetAsync(_prefix + "w", new ConsulQuery(initial.Index, TimeSpan.FromSeconds(30)), Ct);
        Assert.False(blocked.IsCompleted);
        await _consul.KvPutAsync(_prefix + "w", Bytes("after"), null, Ct);
        var changed = await blocked.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal("after", Text(changed.Value!.Value));
        Assert.True(changed.Index > initial.Index);
    }

    [Fact]
    public async Task A_blocking_query_without_a_change_returns_the_same_index_after_the_wait()
    {
        await _consul.KvPutAsync(_prefix + "quiet", Bytes("v"), null, Ct);
        var initial = await _consul.KvGetAsync(_prefix + "quiet", null, Ct);

        var result = await _consul.KvGetAsync(_prefix + "quiet", new ConsulQuery(initial.Index, TimeSpan.FromMilliseconds(300)), Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(initial.Index, result.Index);
    }

    [Fact]
    public async Task A_committed_transaction_applies_every_write_at_one_index()
    {
        var result = await _consul.TxnAsync([TxnKvOp.Set(_prefix + "x", Bytes("1")), TxnKvOp.Set(_prefix + "y", Bytes("2"))], Ct);

        Assert.True(result.Committed);
        var x = (await _consul.KvGetAsync(_prefix + "x", null, Ct)).Value!;
        var y = (await _consul.KvGetAsync(_prefix + "y", null, Ct)).Value!;
        Assert.Equal(x.ModifyIndex, y.ModifyIndex);
    }

    [Fact]
    public async Task A_transaction_with_a_failing_check_is_rolled_back_as_a_false_result()
    {
        await _consul.KvPutAsync(_prefix + "guard", Bytes("g"), null, Ct);
        var guard = (await _consul.KvGetAsync(_prefix + "guard", null, Ct)).Value!;

        var result = await _consul.TxnAsync(
            [
                TxnKvOp.Set(_prefix + "written-first", Bytes("would be")),
                TxnKvOp.CheckAndSet(_prefix + "guard", Bytes("g2"), guard.ModifyIndex + 1000),
            ],
            Ct);

        Assert.False(result.Committed);
        Assert.Equal(1, Assert.Single(result.Errors).OpIndex);
        Assert.Null((await _consul.KvGetAsync(_prefix + "written-first", null, Ct)).Value);
        Assert.Equal("g", Text((await _consul.KvGetAsync(_prefix + "guard", null, Ct)).Value!.Value));
    }

    [Fact]
    public async Task Transaction_checks_see_missing_and_present_keys()
    {
        await _consul.KvPutAsync(_prefix + "present", [], null, Ct);

        Assert.False((await _consul.TxnAsync([TxnKvOp.CheckNotExists(_prefix + "present")], Ct)).Committed);
        Assert.True((await _consul.TxnAsync([TxnKvOp.CheckNotExists(_prefix + "absent")], Ct)).Committed);
        Assert.False((await _consul.TxnAsync([TxnKvOp.Get(_prefix + "absent")], Ct)).Committed);
        Assert.False((await _consul.TxnAsync([TxnKvOp.DeleteIfIndex(_prefix + "present", 1)], Ct)).Committed);
    }

    [Fact]
    public async Task A_transaction_of_more_than_64_operations_is_refused()
    {
        var ops = Enumerable.Range(0, 65).Select(i => TxnKvOp.Set($"{_prefix}many/{i}", [])).ToArray();

        var error = await Assert.ThrowsAsync<ConsulException>(() => _consul.TxnAsync(ops, Ct));

        Assert.Equal(System.Net.HttpStatusCode.RequestEntityTooLarge, error.StatusCode);
    }

    [Fact]
    public async Task A_session_ttl_outside_10s_to_24h_is_refused()
    {
        var error = await Assert.ThrowsAsync<ConsulException>(() => _consul.SessionCreateAsync(new SessionCreateRequest { TTL = "1s" }, Ct));

        Assert.Equal(System.Net.HttpStatusCode.BadRequest, error.StatusCode);
    }

    [Fact]
    public async Task Acquire_locks_a_key_for_one_session_and_release_frees_it()
    {
        var first = await _consul.SessionCreateAsync(new SessionCreateRequest { TTL = "10s", LockDelay = "0s", NodeChecks = [] }, Ct);
        var second = await _consul.SessionCreateAsync(new SessionCreateRequest { TTL = "10s", LockDelay = "0s", NodeChecks = [] }, Ct);
        try
        {
            Assert.True(await _consul.KvPutAsync(_prefix + "lock", Bytes("a"), new KvWriteOptions { Acquire = first }, Ct));
            Assert.False(await _consul.KvPutAsync(_prefix + "lock", Bytes("b"), new KvWriteOptions { Acquire = second }, Ct));
            var held = (await _consul.KvGetAsync(_prefix + "lock", null, Ct)).Value!;
            Assert.Equal(first, held.Session);
            Assert.Equal(1UL, held.LockIndex);

            Assert.False(await _consul.KvPutAsync(_prefix + "lock", [], new KvWriteOptions { Release = second }, Ct));
            Assert.True(await _consul.KvPutAsync(_prefix + "lock", [], new KvWriteOptions { Release = first }, Ct));
            Assert.True(await _consul.KvPutAsync(_prefix + "lock", Bytes("b"), new KvWriteOptions { Acquire = second }, Ct));
            Assert.Equal(2UL, (await _consul.KvGetAsync(_prefix + "lock", null, Ct)).Value!.LockIndex);
        }
        finally
        {
            await _consul.SessionDestroyAsync(first, Ct);
            await _consul.SessionDestroyAsync(second, Ct);
        }
    }

    [Fact]
    public async Task Renew_and_info_know_a_live_session_and_not_a_destroyed_one()
    {
        var id = await _consul.SessionCreateAsync(new SessionCreateRequest { Name = "carml-test", TTL = "10s", NodeChecks = [] }, Ct);

        Assert.Equal(id, (await _consul.SessionRenewAsync(id, Ct))?.ID);
        Assert.Equal("carml-test", (await _consul.SessionInfoAsync(id, Ct))?.Name);
        Assert.True(await _consul.SessionDestroyAsync(id, Ct));
        Assert.Null(await _consul.SessionRenewAsync(id, Ct));
        Assert.Null(await _consul.SessionInfoAsync(id, Ct));
    }

    [Fact]
    public async Task An_expired_delete_session_removes_its_keys_and_a_release_session_only_unlocks_them()
    {
        var deleting = await _consul.SessionCreateAsync(new SessionCreateRequest { TTL = "10s", Behavior = SessionBehaviors.Delete, LockDelay = "0s", NodeChecks = [] }, Ct);
        var releasing = await _consul.SessionCreateAsync(new SessionCreateRequest { TTL = "10s", Behavior = SessionBehaviors.Release, LockDelay = "0s", NodeChecks = [] }, Ct);
        await _consul.KvPutAsync(_prefix + "ephemeral", Bytes("x"), new KvWriteOptions { Acquire = deleting }, Ct);
        await _consul.KvPutAsync(_prefix + "locked", Bytes("y"), new KvWriteOptions { Acquire = releasing }, Ct);

        // Consul invalidates a session that has not been renewed for up to twice its TTL.
        await target.PassAsync(TimeSpan.FromSeconds(21));
        await Eventually.WaitAsync(() => _consul.KvGetAsync(_prefix + "ephemeral", null, Ct), r => r.Value is null, TimeSpan.FromSeconds(30), "the key of the expired delete session is removed");

        var locked = (await _consul.KvGetAsync(_prefix + "locked", null, Ct)).Value;
        Assert.NotNull(locked);
        Assert.Null(locked.Session);
        Assert.Equal("y", Text(locked.Value));
    }

    [Fact]
    public async Task Lock_delay_keeps_a_lock_of_an_invalidated_session_from_being_taken_at_once()
    {
        var first = await _consul.SessionCreateAsync(new SessionCreateRequest { TTL = "10s", LockDelay = "15s", NodeChecks = [] }, Ct);
        var second = await _consul.SessionCreateAsync(new SessionCreateRequest { TTL = "60s", LockDelay = "0s", NodeChecks = [] }, Ct);
        try
        {
            Assert.True(await _consul.KvPutAsync(_prefix + "delayed", [], new KvWriteOptions { Acquire = first }, Ct));
            await _consul.SessionDestroyAsync(first, Ct);

            Assert.False(await _consul.KvPutAsync(_prefix + "delayed", [], new KvWriteOptions { Acquire = second }, Ct));
            await target.PassAsync(TimeSpan.FromSeconds(16));
            Assert.True(await _consul.KvPutAsync(_prefix + "delayed", [], new KvWriteOptions { Acquire = second }, Ct));
        }
        finally
        {
            await _consul.SessionDestroyAsync(second, Ct);
        }
    }

    [Fact]
    public async Task A_registered_service_with_a_passing_ttl_check_is_listed_as_passing()
    {
        var name = "carml-test-" + Guid.NewGuid().ToString("N")[..8];
        await _consul.AgentServiceRegisterAsync(Registration(name, CheckStatuses.Passing), Ct);
        try
        {
            var passing = (await _consul.HealthServiceAsync(name, passingOnly: true, null, Ct)).Value;

            var entry = Assert.Single(passing);
            Assert.Equal(name + "-1", entry.Service.ID);
            Assert.Equal(9999, entry.Service.Port);
            Assert.Contains("test", entry.Service.Tags!);
            Assert.Equal("v", entry.Service.Meta!["k"]);
        }
        finally
        {
            await _consul.AgentServiceDeregisterAsync(name + "-1", Ct);
        }
    }

    [Fact]
    public async Task A_failed_check_drops_the_service_from_the_passing_list_and_pass_brings_it_back()
    {
        var name = "carml-test-" + Guid.NewGuid().ToString("N")[..8];
        await _consul.AgentServiceRegisterAsync(Registration(name, CheckStatuses.Passing), Ct);
        try
        {
            Assert.True(await _consul.AgentCheckUpdateAsync("service:" + name + "-1", CheckStatuses.Critical, "stopping", Ct));
            Assert.Empty((await _consul.HealthServiceAsync(name, true, null, Ct)).Value);
            Assert.Single((await _consul.HealthServiceAsync(name, false, null, Ct)).Value);

            Assert.True(await _consul.AgentCheckUpdateAsync("service:" + name + "-1", CheckStatuses.Passing, null, Ct));
            Assert.Single((await _consul.HealthServiceAsync(name, true, null, Ct)).Value);
        }
        finally
        {
            await _consul.AgentServiceDeregisterAsync(name + "-1", Ct);
        }
    }

    [Fact]
    public async Task A_ttl_check_not_updated_in_time_goes_critical()
    {
        var name = "carml-test-" + Guid.NewGuid().ToString("N")[..8];
        await _consul.AgentServiceRegisterAsync(Registration(name, CheckStatuses.Passing, ttl: "10s"), Ct);
        try
        {
            await target.PassAsync(TimeSpan.FromSeconds(11));

            var entry = await Eventually.WaitAsync(
                async () => (await _consul.HealthServiceAsync(name, false, null, Ct)).Value,
                entries => entries.Count == 1 && entries[0].Checks.Any(c => c.CheckID == "service:" + name + "-1" && c.Status == CheckStatuses.Critical),
                TimeSpan.FromSeconds(30),
                "the TTL check goes critical");
            Assert.Empty((await _consul.HealthServiceAsync(name, true, null, Ct)).Value);
        }
        finally
        {
            await _consul.AgentServiceDeregisterAsync(name + "-1", Ct);
        }
    }

    [Fact]
    public async Task Updating_an_unknown_check_and_deregistering_an_unknown_service_answer_false()
    {
        Assert.False(await _consul.AgentCheckUpdateAsync("service:no-such-" + Guid.NewGuid().ToString("N"), CheckStatuses.Passing, null, Ct));
        Assert.False(await _consul.AgentServiceDeregisterAsync("no-such-" + Guid.NewGuid().ToString("N"), Ct));
    }

    [Fact]
    public async Task Deregistration_removes_the_service_from_health()
    {
        var name = "carml-test-" + Guid.NewGuid().ToString("N")[..8];
        await _consul.AgentServiceRegisterAsync(Registration(name, CheckStatuses.Passing), Ct);

        Assert.True(await _consul.AgentServiceDeregisterAsync(name + "-1", Ct));
        Assert.Empty((await _consul.HealthServiceAsync(name, false, null, Ct)).Value);
    }

    [Fact]
    public async Task The_agent_reports_a_leader()
    {
        Assert.False(string.IsNullOrEmpty(await _consul.StatusLeaderAsync(Ct)));
    }

    private static AgentServiceRegistration Registration(string name, string status, string ttl = "15s") => new()
    {
        ID = name + "-1",
        Name = name,
        Address = "127.0.0.1",
        Port = 9999,
        Tags = ["test"],
        Meta = new Dictionary<string, string> { ["k"] = "v" },
        Check = new AgentServiceCheck { TTL = ttl, Status = status, DeregisterCriticalServiceAfter = "1m" },
    };
}

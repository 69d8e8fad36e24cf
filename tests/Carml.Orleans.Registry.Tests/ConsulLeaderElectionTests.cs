using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Logging.Abstractions;
using static Carml.Orleans.Registry.Tests.ConsulTarget;

namespace Carml.Orleans.Registry.Tests;

/// <summary>Consul's leader-election pattern (<see cref="ConsulLeaderElection"/>) and the lock-delay it relies on.</summary>
public sealed class ConsulLeaderElectionTests(ConsulTarget target) : IClassFixture<ConsulTarget>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task One_candidate_holds_the_lock_and_resigning_hands_it_to_the_next()
    {
        var key = NewPrefix() + "locks/leader";
        await using var first = Election(key, "first");
        await using var second = Election(key, "second");

        var firstHeld = await first.AcquireAsync(Ct);
        var waiting = second.AcquireAsync(Ct);
        await Task.Delay(300, Ct);
        Assert.False(waiting.IsCompleted, "A second candidate was elected while the first held the lock.");
        Assert.True(first.IsLeader);
        var holder = (await target.CreateClient().KvGetAsync(key, null, Ct)).Value;
        Assert.Equal(first.Session, holder?.Session);
        Assert.Equal("first", Text(holder?.Value));

        await first.ResignAsync(Ct);

        var secondHeld = await waiting.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True(firstHeld.IsCancellationRequested, "Resigning cancels the leader's token.");
        Assert.False(secondHeld.IsCancellationRequested);
        Assert.Equal(second.Session, (await target.CreateClient().KvGetAsync(key, null, Ct)).Value?.Session);
    }

    [Fact]
    public async Task When_the_holder_session_is_gone_the_next_candidate_waits_out_the_lock_delay_then_takes_over()
    {
        var key = NewPrefix() + "locks/leader";
        var lockDelay = TimeSpan.FromSeconds(5);
        await using var first = Election(key, "first", lockDelay);
        await using var second = Election(key, "second", lockDelay);
        var firstHeld = await first.AcquireAsync(Ct);
        var waiting = second.AcquireAsync(Ct);

        // What Consul does when the holder stops renewing: invalidate its session (behavior delete: the key goes).
        await target.CreateClient().SessionDestroyAsync(first.Session!, Ct);

        await Task.WhenAny(Task.Delay(TimeSpan.FromSeconds(10), Ct), Task.Delay(Timeout.Infinite, firstHeld));
        Assert.True(firstHeld.IsCancellationRequested, "The holder did not notice that its session was gone.");
        Assert.Null((await target.CreateClient().KvGetAsync(key, null, Ct)).Value);
        await Task.Delay(500, Ct);
        Assert.False(waiting.IsCompleted, "The lock was acquired again inside its lock-delay.");

        await target.PassAsync(lockDelay);

        var secondHeld = await waiting.WaitAsync(TimeSpan.FromSeconds(15), Ct);
        Assert.False(secondHeld.IsCancellationRequested);
        Assert.Equal(second.Session, (await target.CreateClient().KvGetAsync(key, null, Ct)).Value?.Session);
    }

    [Fact]
    public async Task Owned_keys_are_held_by_the_leader_session_and_vanish_with_it()
    {
        var prefix = NewPrefix();
        await using var leader = Election(prefix + "locks/leader", "leader");
        await using var follower = Election(prefix + "locks/leader", "follower");
        await leader.AcquireAsync(Ct);
        var client = target.CreateClient();

        Assert.True(await leader.PutOwnedAsync(prefix + "models/a/1", Bytes("a"), Ct));
        await Assert.ThrowsAsync<InvalidOperationException>(() => follower.PutOwnedAsync(prefix + "models/a/1", Bytes("b"), Ct));
        var owned = (await client.KvGetAsync(prefix + "models/a/1", null, Ct)).Value;
        Assert.Equal(leader.Session, owned?.Session);
        Assert.Equal("a", Text(owned?.Value));

        await client.SessionDestroyAsync(leader.Session!, Ct);

        Assert.Null((await client.KvGetAsync(prefix + "models/a/1", null, Ct)).Value);
    }

    [Fact]
    public async Task Acquiring_is_refused_during_a_lock_delay_by_put_and_by_transaction()
    {
        var key = NewPrefix() + "locks/delayed";
        var client = target.CreateClient();
        var holder = await client.SessionCreateAsync(new SessionCreateRequest { TTL = "10s", LockDelay = "10s", NodeChecks = [] }, Ct);
        Assert.True(await client.KvPutAsync(key, Bytes("held"), new KvWriteOptions { Acquire = holder }, Ct));
        await client.SessionDestroyAsync(holder, Ct);
        var next = await client.SessionCreateAsync(new SessionCreateRequest { TTL = "10s", LockDelay = "0s", NodeChecks = [] }, Ct);

        var released = (await client.KvGetAsync(key, null, Ct)).Value;
        Assert.NotNull(released);
        Assert.Null(released.Session);
        Assert.False(await client.KvPutAsync(key, Bytes("next"), new KvWriteOptions { Acquire = next }, Ct));
        var txn = await client.TxnAsync([new TxnKvOp { Verb = TxnVerbs.Lock, Key = key, Value = Bytes("next"), Session = next }], Ct);
        Assert.False(txn.Committed, "A transaction acquired a key inside its lock-delay.");

        await target.PassAsync(TimeSpan.FromSeconds(10));

        var acquired = await Eventually.WaitAsync(
            () => client.KvPutAsync(key, Bytes("next"), new KvWriteOptions { Acquire = next }, Ct), ok => ok, TimeSpan.FromSeconds(15), "the key is acquired after the lock-delay");
        Assert.True(acquired);
        Assert.Equal(next, (await client.KvGetAsync(key, null, Ct)).Value?.Session);
        await client.SessionDestroyAsync(next, Ct);
    }

    [Fact]
    public void Options_outside_consul_ranges_are_refused()
    {
        var client = target.CreateClient();
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConsulLeaderElection(client, new ConsulLeaderElectionOptions { LockKey = "k", SessionTtl = TimeSpan.FromSeconds(5) }, NullLogger.Instance));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConsulLeaderElection(client, new ConsulLeaderElectionOptions { LockKey = "k", LockDelay = TimeSpan.FromSeconds(61) }, NullLogger.Instance));
        Assert.Throws<ArgumentException>(() => new ConsulLeaderElection(client, new ConsulLeaderElectionOptions { LockKey = " " }, NullLogger.Instance));
    }

    private ConsulLeaderElection Election(string key, string candidate, TimeSpan? lockDelay = null) => new(
        target.CreateClient(),
        new ConsulLeaderElectionOptions
        {
            LockKey = key,
            SessionTtl = TimeSpan.FromSeconds(10),
            LockDelay = lockDelay ?? TimeSpan.Zero,
            LockRetryInterval = TimeSpan.FromMilliseconds(100),
            Candidate = candidate,
        },
        NullLogger.Instance);
}

using System.Collections.Concurrent;
using Carml.Orleans.ConsulEmulator;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Logging.Abstractions;
using static Carml.Orleans.Registry.Tests.ConsulTarget;

namespace Carml.Orleans.Registry.Tests;

/// <summary>
/// The single elected publisher (<see cref="ElectedKeyPublisher"/>, what the gateways use for <c>carml/models/</c>): two
/// publishers against one Consul, one elected; change-only writes; deletions; take-over; Consul unreachable.
/// </summary>
public sealed class ElectedKeyPublisherTests(ConsulTarget target) : IClassFixture<ConsulTarget>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Of_two_publishers_one_is_elected_and_the_other_neither_reads_the_source_nor_writes()
    {
        var prefix = NewPrefix();
        var source = new Source(prefix, ("iris/1", "ready"), ("iris/2", "loading"));
        var otherSource = new Source(prefix, ("iris/1", "ready"), ("iris/2", "loading"));
        await using var first = Run(prefix, source);
        await WaitForValueAsync(prefix + "models/iris/2", "loading");
        await using var second = Run(prefix, otherSource);
        await Eventually.WaitAsync(() => Task.FromResult(second.Publisher.Session), s => s is not null, Bound, "the second publisher campaigns");

        var calls = source.Calls;
        await Eventually.WaitAsync(() => Task.FromResult(source.Calls), c => c >= calls + 3, Bound, "the leader keeps reading its source every period");

        Assert.True(first.Publisher.IsLeader);
        Assert.False(second.Publisher.IsLeader);
        Assert.Equal(0, otherSource.Calls);
        var client = target.CreateClient();
        Assert.Equal(first.Publisher.Session, (await client.KvGetAsync(prefix + "locks/publisher", null, Ct)).Value?.Session);
        foreach (var key in new[] { "models/iris/1", "models/iris/2" })
        {
            Assert.Equal(first.Publisher.Session, (await client.KvGetAsync(prefix + key, null, Ct)).Value?.Session);
        }
    }

    [Fact]
    public async Task An_unchanged_key_is_not_rewritten_and_a_changed_one_is_written_once()
    {
        var prefix = NewPrefix();
        var source = new Source(prefix, ("iris/1", "ready"), ("resnet/1", "loading"));
        await using var publisher = Run(prefix, source);
        var iris = await WaitForValueAsync(prefix + "models/iris/1", "ready");
        var resnet = await WaitForValueAsync(prefix + "models/resnet/1", "loading");

        var calls = source.Calls;
        await Eventually.WaitAsync(() => Task.FromResult(source.Calls), c => c >= calls + 5, Bound, "the leader reads its source five more periods");
        Assert.Equal(iris.ModifyIndex, (await Get(prefix + "models/iris/1")).ModifyIndex);
        Assert.Equal(resnet.ModifyIndex, (await Get(prefix + "models/resnet/1")).ModifyIndex);

        // A failing source (the cluster unreachable for a moment) does not make the leader rewrite what it wrote.
        source.FailNext(3);
        await Eventually.WaitAsync(() => Task.FromResult(source.Failures), f => f == 0, Bound, "the source fails three times");
        calls = source.Calls;
        await Eventually.WaitAsync(() => Task.FromResult(source.Calls), c => c >= calls + 2, Bound, "the leader reads its source again");
        Assert.Equal(3, source.Thrown);
        Assert.Equal(iris.ModifyIndex, (await Get(prefix + "models/iris/1")).ModifyIndex);
        Assert.True(publisher.Publisher.IsLeader);

        source.Set("resnet/1", "ready");
        var changed = await WaitForValueAsync(prefix + "models/resnet/1", "ready");
        calls = source.Calls;
        await Eventually.WaitAsync(() => Task.FromResult(source.Calls), c => c >= calls + 3, Bound, "the leader reads its source three more periods");

        Assert.True(changed.ModifyIndex > resnet.ModifyIndex);
        Assert.Equal(changed.ModifyIndex, (await Get(prefix + "models/resnet/1")).ModifyIndex);
        Assert.Equal(iris.ModifyIndex, (await Get(prefix + "models/iris/1")).ModifyIndex);
    }

    [Fact]
    public async Task The_key_of_a_deleted_version_disappears_and_a_stale_key_is_removed_on_election()
    {
        var prefix = NewPrefix();
        var client = target.CreateClient();
        await client.KvPutAsync(prefix + "models/gone/1", Bytes("left by an earlier publisher"), null, Ct);
        var source = new Source(prefix, ("iris/1", "ready"), ("iris/2", "ready"));
        await using var publisher = Run(prefix, source);
        await WaitForValueAsync(prefix + "models/iris/2", "ready");
        await Eventually.WaitAsync(() => client.KvGetAsync(prefix + "models/gone/1", null, Ct), r => r.Value is null, Bound, "the stale key is deleted by the new leader");

        source.Remove("iris/2");

        await Eventually.WaitAsync(() => client.KvGetAsync(prefix + "models/iris/2", null, Ct), r => r.Value is null, Bound, "the deleted version's key disappears");
        Assert.Equal("ready", Text((await Get(prefix + "models/iris/1")).Value));
    }

    [Fact]
    public async Task A_published_key_deleted_behind_the_leaders_back_is_written_again()
    {
        var prefix = NewPrefix();
        await using var publisher = Run(prefix, new Source(prefix, ("iris/1", "ready")));
        await WaitForValueAsync(prefix + "models/iris/1", "ready");
        var client = target.CreateClient();

        Assert.True(await client.KvDeleteAsync(prefix + "models/iris/1", cancellationToken: Ct));

        var again = await WaitForValueAsync(prefix + "models/iris/1", "ready");
        Assert.Equal(publisher.Publisher.Session, again.Session);
    }

    [Fact]
    public async Task A_leader_whose_lock_is_deleted_ends_its_session_so_its_keys_do_not_stay_frozen()
    {
        var prefix = NewPrefix();
        await using var publisher = Run(prefix, new Source(prefix, ("iris/1", "ready")), lockDelay: TimeSpan.Zero);
        await WaitForValueAsync(prefix + "models/iris/1", "ready");
        var lostSession = publisher.Publisher.Session;
        var client = target.CreateClient();

        Assert.True(await client.KvDeleteAsync(prefix + "locks/publisher", cancellationToken: Ct));

        await Eventually.WaitAsync(
            () => client.SessionInfoAsync(lostSession!, Ct), s => s is null, Bound, "the session that lost the lock is destroyed");
        await Eventually.WaitAsync(
            () => client.KvGetAsync(prefix + "models/iris/1", null, Ct),
            r => r.Value is { Session: { } holder } && holder != lostSession,
            Bound,
            "iris/1 is published again under the new term's session");
    }

    [Fact]
    public async Task When_the_holder_stops_the_other_takes_over_and_publishes_with_its_own_session()
    {
        var prefix = NewPrefix();
        var first = Run(prefix, new Source(prefix, ("iris/1", "ready")));
        await WaitForValueAsync(prefix + "models/iris/1", "ready");
        await using var second = Run(prefix, new Source(prefix, ("iris/1", "ready"), ("iris/2", "ready")));
        await Eventually.WaitAsync(() => Task.FromResult(second.Publisher.Session), s => s is not null, Bound, "the second publisher campaigns");
        Assert.True(first.Publisher.IsLeader);

        await first.DisposeAsync();

        await Eventually.WaitAsync(() => Task.FromResult(second.Publisher.IsLeader), l => l, Bound, "the second publisher is elected");
        var client = target.CreateClient();
        await Eventually.WaitAsync(
            () => client.KvGetAsync(prefix + "models/iris/1", null, Ct), r => r.Value?.Session == second.Publisher.Session, Bound, "the new leader holds iris/1");
        Assert.Equal(second.Publisher.Session, (await Get(prefix + "models/iris/2")).Session);
        Assert.Equal(second.Publisher.Session, (await Get(prefix + "locks/publisher")).Session);
    }

    [Fact]
    public async Task When_the_holder_dies_its_keys_go_with_its_session_and_the_other_takes_over_after_the_lock_delay()
    {
        var prefix = NewPrefix();
        var network = new Network();
        var lockDelay = TimeSpan.FromSeconds(3);
        await using var first = Run(prefix, new Source(prefix, ("iris/1", "ready")), lockDelay, network);
        await WaitForValueAsync(prefix + "models/iris/1", "ready");
        await using var second = Run(prefix, new Source(prefix, ("iris/1", "ready")), lockDelay);
        await Eventually.WaitAsync(() => Task.FromResult(second.Publisher.Session), s => s is not null, Bound, "the second publisher campaigns");
        var dead = first.Publisher.Session!;

        // The holder's host is cut off, and Consul invalidates its session (what the TTL running out does).
        network.Cut = true;
        var client = target.CreateClient();
        await client.SessionDestroyAsync(dead, Ct);

        Assert.Null((await client.KvGetAsync(prefix + "models/iris/1", null, Ct)).Value);
        await Task.Delay(500, Ct);
        Assert.False(second.Publisher.IsLeader, "The other publisher was elected inside the lock-delay.");
        await target.PassAsync(lockDelay);
        await Eventually.WaitAsync(
            () => client.KvGetAsync(prefix + "models/iris/1", null, Ct), r => r.Value?.Session == second.Publisher.Session && second.Publisher.Session != dead, Bound, "the other publisher republishes iris/1");
        Assert.True(second.Publisher.IsLeader);
    }

    [Fact]
    public async Task A_leader_cut_off_from_consul_steps_down_once_a_session_ttl_passes_without_renewal()
    {
        var prefix = NewPrefix();
        var network = new Network();
        await using var publisher = Run(prefix, new Source(prefix, ("iris/1", "ready")), network: network);
        await WaitForValueAsync(prefix + "models/iris/1", "ready");
        Assert.True(publisher.Publisher.IsLeader);

        network.Cut = true;

        // Consul invalidates an unrenewed session after its TTL (10 s here); the leader must not outlive it in its own eyes.
        await Eventually.WaitAsync(
            () => Task.FromResult(publisher.Publisher.IsLeader), leading => !leading, TimeSpan.FromSeconds(40),
            "the cut-off leader steps down within a session TTL of its last renewal");
    }

    [Fact]
    public async Task While_consul_is_unreachable_the_publisher_keeps_running_and_publishes_when_it_returns()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(cancellationToken: Ct);
        var prefix = NewPrefix();
        var source = new Source(prefix, ("iris/1", "ready"));
        await using var publisher = Run(prefix, source, client: CreateClient(consul.Address));
        var client = CreateClient(consul.Address);
        await Eventually.WaitAsync(() => client.KvGetAsync(prefix + "models/iris/1", null, Ct), r => r.Value is not null, Bound, "iris/1 is published");

        await consul.StopAsync();
        source.Set("iris/2", "ready");
        var calls = source.Calls;
        await Eventually.WaitAsync(() => Task.FromResult(source.Calls), c => c >= calls + 2, Bound, "the publisher keeps trying while Consul is down");
        Assert.False(publisher.Task.IsCompleted, "The publisher stopped while Consul was unreachable.");
        await consul.StartAgainAsync(Ct);

        await Eventually.WaitAsync(() => client.KvGetAsync(prefix + "models/iris/2", null, Ct), r => r.Value is not null, TimeSpan.FromSeconds(30), "iris/2 is published once Consul is back");
        Assert.False(publisher.Task.IsCompleted);
    }

    private async Task<KvPair> Get(string key) =>
        (await target.CreateClient().KvGetAsync(key, null, Ct)).Value ?? throw new Xunit.Sdk.XunitException($"'{key}' does not exist.");

    private Task<KvPair> WaitForValueAsync(string key, string value) =>
        Eventually.WaitAsync(
            async () => (await target.CreateClient().KvGetAsync(key, null, Ct)).Value,
            pair => pair is not null && Text(pair.Value) == value,
            Bound,
            $"'{key}' reads '{value}'")!;

    private Running Run(string prefix, Source source, TimeSpan? lockDelay = null, Network? network = null, ConsulClient? client = null)
    {
        client ??= network is null ? target.CreateClient() : CutOffClient(target.Address, network);
        var publisher = new ElectedKeyPublisher(
            client,
            new ElectedKeyPublisherOptions
            {
                Election = new ConsulLeaderElectionOptions
                {
                    LockKey = prefix + "locks/publisher",
                    SessionTtl = TimeSpan.FromSeconds(10),
                    LockDelay = lockDelay ?? TimeSpan.Zero,
                    LockRetryInterval = TimeSpan.FromMilliseconds(100),
                },
                Prefix = prefix + "models/",
                Period = TimeSpan.FromMilliseconds(100),
                RetryDelay = TimeSpan.FromMilliseconds(100),
            },
            source.ReadAsync,
            NullLogger.Instance);
        var stopping = new CancellationTokenSource();
        return new Running(publisher, publisher.RunAsync(stopping.Token), stopping);
    }

    private static ConsulClient CutOffClient(Uri address, Network network) =>
        new(new HttpClient(network), Microsoft.Extensions.Options.Options.Create(new ConsulOptions
        {
            Address = address.ToString(), RetryDelay = TimeSpan.FromMilliseconds(20), MaxRetries = 2, BlockingWait = TimeSpan.FromSeconds(5), MinimumWatchInterval = TimeSpan.FromMilliseconds(10),
        }), NullLogger<ConsulClient>.Instance);

    /// <summary>A publisher running in the background; disposing it stops it cleanly and surfaces any exception it threw.</summary>
    private sealed record Running(ElectedKeyPublisher Publisher, Task Task, CancellationTokenSource Stopping) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Stopping.CancelAsync();
            await Task.WaitAsync(TimeSpan.FromSeconds(30));
            Stopping.Dispose();
        }
    }

    /// <summary>The desired keys (what the gateway reads from the model catalog), counting how often it is read.</summary>
    private sealed class Source
    {
        private readonly string _prefix;
        private readonly ConcurrentDictionary<string, string> _models = new(StringComparer.Ordinal);
        private int _calls;
        private int _failures;
        private int _thrown;

        public Source(string prefix, params (string Model, string State)[] models)
        {
            _prefix = prefix;
            foreach (var (model, state) in models)
            {
                Set(model, state);
            }
        }

        public int Calls => Volatile.Read(ref _calls);

        public void Set(string model, string state) => _models[model] = state;

        public void Remove(string model) => _models.TryRemove(model, out _);

        /// <summary>Failures still to come.</summary>
        public int Failures => Volatile.Read(ref _failures);

        /// <summary>Failures so far.</summary>
        public int Thrown => Volatile.Read(ref _thrown);

        public void FailNext(int count) => Volatile.Write(ref _failures, count);

        public Task<IReadOnlyDictionary<string, byte[]>> ReadAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            if (Interlocked.Decrement(ref _failures) >= 0)
            {
                Interlocked.Increment(ref _thrown);
                throw new TimeoutException("The model catalog did not answer (test).");
            }

            Interlocked.CompareExchange(ref _failures, 0, -1);
            IReadOnlyDictionary<string, byte[]> keys = _models.ToDictionary(pair => _prefix + "models/" + pair.Key, pair => Bytes(pair.Value), StringComparer.Ordinal);
            return Task.FromResult(keys);
        }
    }

    /// <summary>A real HTTP handler that can be cut off, as a host losing its network.</summary>
    private sealed class Network() : DelegatingHandler(new SocketsHttpHandler())
    {
        public volatile bool Cut;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Cut ? throw new HttpRequestException("The network is cut (test).") : base.SendAsync(request, cancellationToken);
    }
}

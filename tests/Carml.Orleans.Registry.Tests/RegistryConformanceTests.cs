using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using static Carml.Orleans.Registry.Tests.ConsulTarget;

namespace Carml.Orleans.Registry.Tests;

/// <summary>CarML's key/value registry contract, held by both providers: Consul and embedded.</summary>
public sealed class RegistryConformanceTests(ConsulTarget target) : IClassFixture<ConsulTarget>
{
    private const string Consul = "consul";
    private const string Embedded = "embedded";

    public static TheoryData<string> Providers => [Consul, Embedded];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Put_get_exists_and_delete_round_trip(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;

        await registry.PutAsync("models/iris/1", Bytes("ready"), cancellationToken: Ct);

        var entry = await registry.GetAsync("models/iris/1", Ct);
        Assert.NotNull(entry);
        Assert.Equal("models/iris/1", entry.Key);
        Assert.Equal("ready", Text(entry.Value));
        Assert.True(entry.LastIndex > 0);
        Assert.True(await registry.ExistsAsync("models/iris/1", Ct));
        Assert.True(await registry.DeleteAsync("models/iris/1", Ct));
        Assert.False(await registry.DeleteAsync("models/iris/1", Ct));
        Assert.Null(await registry.GetAsync("models/iris/1", Ct));
        Assert.False(await registry.ExistsAsync("models/iris/1", Ct));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task List_returns_the_entries_under_a_directory_but_not_its_neighbours(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;
        await registry.PutAsync("agents/a1", Bytes("1"), cancellationToken: Ct);
        await registry.PutAsync("agents/a2", Bytes("2"), cancellationToken: Ct);
        await registry.PutAsync("agents10/x", Bytes("x"), cancellationToken: Ct);

        var listed = await registry.ListAsync("agents", Ct);

        Assert.Equal(["agents/a1", "agents/a2"], listed.Select(e => e.Key));
        Assert.Empty(await registry.ListAsync("nothing-here", Ct));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Delete_tree_removes_a_directory_only(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;
        await registry.PutAsync("tree/a", [], cancellationToken: Ct);
        await registry.PutAsync("tree/b/c", [], cancellationToken: Ct);
        await registry.PutAsync("tree2/keep", [], cancellationToken: Ct);

        await registry.DeleteTreeAsync("tree", Ct);

        Assert.Empty(await registry.ListAsync("tree", Ct));
        Assert.True(await registry.ExistsAsync("tree2/keep", Ct));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Atomic_put_creates_when_absent_and_replaces_only_the_version_it_read(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;

        var created = await registry.AtomicPutAsync("cas", Bytes("v1"), previous: null, cancellationToken: Ct);
        Assert.True(created.Succeeded);
        Assert.False((await registry.AtomicPutAsync("cas", Bytes("again"), previous: null, cancellationToken: Ct)).Succeeded);

        var replaced = await registry.AtomicPutAsync("cas", Bytes("v2"), created.Entry, cancellationToken: Ct);
        Assert.True(replaced.Succeeded);
        Assert.NotEqual(created.Entry!.LastIndex, replaced.Entry!.LastIndex);
        Assert.False((await registry.AtomicPutAsync("cas", Bytes("stale"), created.Entry, cancellationToken: Ct)).Succeeded);
        Assert.Equal("v2", Text((await registry.GetAsync("cas", Ct))!.Value));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Atomic_delete_removes_only_the_version_it_read(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;
        var first = (await registry.AtomicPutAsync("del", Bytes("1"), null, cancellationToken: Ct)).Entry!;
        var second = (await registry.AtomicPutAsync("del", Bytes("2"), first, cancellationToken: Ct)).Entry!;

        Assert.False(await registry.AtomicDeleteAsync("del", first, Ct));
        Assert.True(await registry.AtomicDeleteAsync("del", second, Ct));
        Assert.False(await registry.ExistsAsync("del", Ct));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task A_transaction_applies_all_operations_or_none(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;
        var version = (await registry.AtomicPutAsync("txn/version", Bytes("1"), null, cancellationToken: Ct)).Entry!;

        Assert.False(await registry.CommitAsync(
            [
                new RegistryOperation.Set("txn/row", Bytes("row")),
                new RegistryOperation.CheckAndSet("txn/version", Bytes("2"), version.LastIndex + 1000),
            ],
            Ct));
        Assert.False(await registry.ExistsAsync("txn/row", Ct));

        Assert.True(await registry.CommitAsync(
            [
                new RegistryOperation.CheckNotExists("txn/row"),
                new RegistryOperation.Set("txn/row", Bytes("row")),
                new RegistryOperation.CheckAndSet("txn/version", Bytes("2"), version.LastIndex),
            ],
            Ct));
        var row = (await registry.GetAsync("txn/row", Ct))!;
        var updated = (await registry.GetAsync("txn/version", Ct))!;
        Assert.Equal(row.LastIndex, updated.LastIndex);
        Assert.True(await registry.CommitAsync([new RegistryOperation.CheckIndex("txn/row", row.LastIndex), new RegistryOperation.CheckAndDelete("txn/row", row.LastIndex)], Ct));
        Assert.False(await registry.ExistsAsync("txn/row", Ct));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task A_key_put_with_a_ttl_disappears_when_not_written_again(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;
        await registry.PutAsync("ttl/agent", Bytes("alive"), new RegistryWriteOptions { Ttl = TimeSpan.FromSeconds(10) }, Ct);
        await registry.PutAsync("ttl/kept", Bytes("forever"), cancellationToken: Ct);
        Assert.True(await registry.ExistsAsync("ttl/agent", Ct));

        await subject.PassAsync(TimeSpan.FromSeconds(21));

        await Eventually.WaitAsync(() => registry.ExistsAsync("ttl/agent", Ct), exists => !exists, TimeSpan.FromSeconds(30), "the TTL key expires");
        Assert.True(await registry.ExistsAsync("ttl/kept", Ct));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Writing_a_ttl_key_again_keeps_it_alive(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;
        var ttl = new RegistryWriteOptions { Ttl = TimeSpan.FromSeconds(10) };
        await registry.PutAsync("ttl/renewed", Bytes("1"), ttl, Ct);

        await subject.PassAsync(TimeSpan.FromSeconds(8));
        await registry.PutAsync("ttl/renewed", Bytes("2"), ttl, Ct);
        await subject.PassAsync(TimeSpan.FromSeconds(8));

        Assert.Equal("2", Text((await registry.GetAsync("ttl/renewed", Ct))?.Value));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Watch_yields_the_current_value_then_each_change_and_deletion(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;
        await registry.PutAsync("watched", Bytes("1"), cancellationToken: Ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(20));
        await using var watch = registry.WatchAsync("watched", stop.Token).GetAsyncEnumerator(stop.Token);

        Assert.True(await watch.MoveNextAsync());
        Assert.Equal("1", Text(watch.Current!.Value));

        await registry.PutAsync("watched", Bytes("2"), cancellationToken: Ct);
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal("2", Text(watch.Current!.Value));

        await registry.DeleteAsync("watched", Ct);
        Assert.True(await watch.MoveNextAsync());
        Assert.Null(watch.Current);
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Watch_tree_yields_the_directory_after_each_change_beneath_it(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(20));
        await using var watch = registry.WatchTreeAsync("dir", stop.Token).GetAsyncEnumerator(stop.Token);

        Assert.True(await watch.MoveNextAsync());
        Assert.Empty(watch.Current);

        await registry.PutAsync("dir/a", Bytes("a"), cancellationToken: Ct);
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal(["dir/a"], watch.Current.Select(e => e.Key));

        await registry.PutAsync("dir/b", Bytes("b"), cancellationToken: Ct);
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal(["dir/a", "dir/b"], watch.Current.Select(e => e.Key));
    }

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task A_lock_is_held_by_one_holder_at_a_time(string provider)
    {
        await using var subject = Create(provider);
        var registry = subject.Registry;
        await using var first = registry.NewLock("locks/leader", TimeSpan.FromSeconds(10));
        await using var second = registry.NewLock("locks/leader", TimeSpan.FromSeconds(10));

        var held = await first.LockAsync(Ct);
        var waiting = second.LockAsync(Ct);
        await Task.Delay(200, Ct);
        Assert.False(waiting.IsCompleted, "A second holder got the lock while the first held it.");
        Assert.False(held.IsCancellationRequested);

        await first.UnlockAsync(Ct);
        var secondHeld = await waiting.WaitAsync(TimeSpan.FromSeconds(15), Ct);
        Assert.False(secondHeld.IsCancellationRequested);
        Assert.True(held.IsCancellationRequested, "Unlocking cancels the holder's token.");
    }

    [Fact]
    public async Task A_consul_lock_is_lost_when_its_session_dies()
    {
        await using var subject = Create(Consul);
        var consul = target.CreateClient();
        await using var registryLock = subject.Registry.NewLock("locks/lost", TimeSpan.FromSeconds(10));
        var held = await registryLock.LockAsync(Ct);
        var session = (await consul.KvGetAsync(RegistryOptions.Join(subject.Root, "locks/lost"), null, Ct)).Value!.Session!;

        await consul.SessionDestroyAsync(session, Ct);

        // The holder notices at its next renewal (a third of the TTL).
        await Task.WhenAny(Task.Delay(TimeSpan.FromSeconds(10), Ct), Task.Delay(Timeout.Infinite, held));
        Assert.True(held.IsCancellationRequested, "The lock's token was not cancelled after its session was destroyed.");
    }

    [Fact]
    public async Task Close_releases_ttl_keys_and_locks()
    {
        var subject = Create(Consul);
        await subject.Registry.PutAsync("closing/ttl", Bytes("x"), new RegistryWriteOptions { Ttl = TimeSpan.FromSeconds(30) }, Ct);
        var registryLock = subject.Registry.NewLock("closing/lock", TimeSpan.FromSeconds(10));
        await registryLock.LockAsync(Ct);

        await subject.Registry.CloseAsync();

        Assert.False(await subject.Registry.ExistsAsync("closing/ttl", Ct));
        var lockKey = await subject.Registry.GetAsync("closing/lock", Ct);
        Assert.True(lockKey is null || (await target.CreateClient().KvGetAsync(RegistryOptions.Join(subject.Root, "closing/lock"), null, Ct)).Value?.Session is null);
    }

    private RegistryUnderTest Create(string provider)
    {
        var root = NewPrefix();
        if (provider == Embedded)
        {
            var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
            return new RegistryUnderTest(new EmbeddedRegistry(clock), root, d =>
            {
                clock.Advance(d);
                return Task.CompletedTask;
            });
        }

        var registry = new ConsulRegistry(target.CreateClient(), Options.Create(new RegistryOptions { Root = root }), NullLogger<ConsulRegistry>.Instance);
        return new RegistryUnderTest(registry, root, target.PassAsync);
    }

    private sealed record RegistryUnderTest(IRegistry Registry, string Root, Func<TimeSpan, Task> PassAsync) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Registry.DisposeAsync();
    }
}

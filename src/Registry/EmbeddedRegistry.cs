using System.Runtime.CompilerServices;

namespace Carml.Orleans.Registry;

/// <summary>
/// The registry in process memory, for standalone mode and tests: the same contract as <see cref="ConsulRegistry"/>
/// (indexes, compare-and-swap, TTLs, watches, locks, transactions) without a Consul agent. Nothing survives the process.
/// </summary>
public sealed class EmbeddedRegistry : IRegistry
{
    private readonly object _sync = new();
    private readonly SortedDictionary<string, Item> _items = new(StringComparer.Ordinal);
    private readonly Dictionary<string, object> _lockOwners = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ITimer _expiryTimer;
    private TaskCompletionSource _changed = NewSignal();
    private ulong _index;
    private bool _closed;

    public EmbeddedRegistry(TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _expiryTimer = _time.CreateTimer(_ => Expire(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public Task PutAsync(string key, byte[] value, RegistryWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_sync)
        {
            EnsureOpen();
            ExpireLocked();
            Write(Normalize(key), value, options?.Ttl);
            Signal();
        }

        return Task.CompletedTask;
    }

    public Task<RegistryEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ExpireLocked();
            var normalized = Normalize(key);
            return Task.FromResult(_items.TryGetValue(normalized, out var item) ? ToEntry(normalized, item) : null);
        }
    }

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ExpireLocked();
            var removed = _items.Remove(Normalize(key));
            if (removed)
            {
                _index++;
                Signal();
            }

            return Task.FromResult(removed);
        }
    }

    public async Task<bool> ExistsAsync(string key, CancellationToken cancellationToken = default) =>
        await GetAsync(key, cancellationToken).ConfigureAwait(false) is not null;

    public async IAsyncEnumerable<RegistryEntry?> WatchAsync(string key, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ulong? last = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            Task changed;
            RegistryEntry? entry;
            lock (_sync)
            {
                ExpireLocked();
                changed = _changed.Task;
                var normalized = Normalize(key);
                entry = _items.TryGetValue(normalized, out var item) ? ToEntry(normalized, item) : null;
            }

            var index = entry?.LastIndex ?? 0;
            if (last != index)
            {
                last = index;
                yield return entry;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async IAsyncEnumerable<IReadOnlyList<RegistryEntry>> WatchTreeAsync(string directory, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? last = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            Task changed;
            IReadOnlyList<RegistryEntry> entries;
            lock (_sync)
            {
                ExpireLocked();
                changed = _changed.Task;
                entries = ListLocked(directory);
            }

            var signature = string.Join('\n', entries.Select(e => e.Key + "@" + e.LastIndex));
            if (signature != last)
            {
                last = signature;
                yield return entries;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public IRegistryLock NewLock(string key, TimeSpan? ttl = null) => new EmbeddedLock(this, Normalize(key));

    public Task<IReadOnlyList<RegistryEntry>> ListAsync(string directory, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ExpireLocked();
            return Task.FromResult(ListLocked(directory));
        }
    }

    public Task DeleteTreeAsync(string directory, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            var prefix = DirectoryPrefix(directory);
            var keys = _items.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToArray();
            foreach (var key in keys)
            {
                _items.Remove(key);
            }

            if (keys.Length > 0)
            {
                _index++;
                Signal();
            }
        }

        return Task.CompletedTask;
    }

    public Task<AtomicPutResult> AtomicPutAsync(string key, byte[] value, RegistryEntry? previous, RegistryWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            EnsureOpen();
            ExpireLocked();
            var normalized = Normalize(key);
            var current = _items.TryGetValue(normalized, out var item) ? item.Index : 0;
            if (current != (previous?.LastIndex ?? 0))
            {
                return Task.FromResult(new AtomicPutResult(false, null));
            }

            var written = Write(normalized, value, options?.Ttl);
            Signal();
            return Task.FromResult(new AtomicPutResult(true, ToEntry(normalized, written)));
        }
    }

    public Task<bool> AtomicDeleteAsync(string key, RegistryEntry previous, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(previous);
        lock (_sync)
        {
            ExpireLocked();
            var normalized = Normalize(key);
            if (!_items.TryGetValue(normalized, out var item) || item.Index != previous.LastIndex)
            {
                return Task.FromResult(false);
            }

            _items.Remove(normalized);
            _index++;
            Signal();
            return Task.FromResult(true);
        }
    }

    public Task<bool> CommitAsync(IReadOnlyList<RegistryOperation> operations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        lock (_sync)
        {
            EnsureOpen();
            ExpireLocked();
            foreach (var operation in operations)
            {
                var current = _items.TryGetValue(Normalize(operation.Key), out var item) ? item.Index : 0;
                var ok = operation switch
                {
                    RegistryOperation.CheckAndSet cas => current == cas.LastIndex,
                    RegistryOperation.CheckAndDelete delete => current != 0 && current == delete.LastIndex,
                    RegistryOperation.CheckIndex check => current != 0 && current == check.LastIndex,
                    RegistryOperation.CheckNotExists => current == 0,
                    _ => true,
                };
                if (!ok)
                {
                    return Task.FromResult(false);
                }
            }

            // Every write of one transaction gets the same index, as in Consul.
            _index++;
            foreach (var operation in operations)
            {
                var key = Normalize(operation.Key);
                switch (operation)
                {
                    case RegistryOperation.Set set:
                        _items[key] = new Item(set.Value, _index, null);
                        break;
                    case RegistryOperation.CheckAndSet cas:
                        _items[key] = new Item(cas.Value, _index, null);
                        break;
                    case RegistryOperation.Delete or RegistryOperation.CheckAndDelete:
                        _items.Remove(key);
                        break;
                }
            }

            Signal();
            return Task.FromResult(true);
        }
    }

    public Task CloseAsync()
    {
        lock (_sync)
        {
            _closed = true;
            _lockOwners.Clear();
            Signal();
        }

        _expiryTimer.Dispose();
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    private void EnsureOpen() => ObjectDisposedException.ThrowIf(_closed, this);

    private Item Write(string key, byte[] value, TimeSpan? ttl)
    {
        _index++;
        var item = new Item(value.ToArray(), _index, ttl is { } t ? _time.GetUtcNow() + t : null);
        _items[key] = item;
        return item;
    }

    private IReadOnlyList<RegistryEntry> ListLocked(string directory)
    {
        var prefix = DirectoryPrefix(directory);
        return _items.Where(pair => pair.Key.StartsWith(prefix, StringComparison.Ordinal) && pair.Key != prefix)
            .Select(pair => ToEntry(pair.Key, pair.Value))
            .ToArray();
    }

    private void Expire()
    {
        lock (_sync)
        {
            ExpireLocked();
        }
    }

    private void ExpireLocked()
    {
        var now = _time.GetUtcNow();
        var expired = _items.Where(pair => pair.Value.ExpiresAt is { } at && at <= now).Select(pair => pair.Key).ToArray();
        foreach (var key in expired)
        {
            _items.Remove(key);
        }

        if (expired.Length > 0)
        {
            _index++;
            Signal();
        }
    }

    private void Signal()
    {
        var previous = _changed;
        _changed = NewSignal();
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static string Normalize(string key)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        return key.TrimStart('/');
    }

    private static string DirectoryPrefix(string directory)
    {
        var normalized = directory.TrimStart('/');
        return normalized.Length == 0 || normalized.EndsWith('/') ? normalized : normalized + "/";
    }

    private static RegistryEntry ToEntry(string key, Item item) => new(key, item.Value.ToArray(), item.Index);

    private sealed record Item(byte[] Value, ulong Index, DateTimeOffset? ExpiresAt);

    private sealed class EmbeddedLock(EmbeddedRegistry registry, string key) : IRegistryLock
    {
        private CancellationTokenSource? _held;

        public async Task<CancellationToken> LockAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Task changed;
                lock (registry._sync)
                {
                    registry.EnsureOpen();
                    if (!registry._lockOwners.TryGetValue(key, out var owner))
                    {
                        registry._lockOwners[key] = this;
                        _held = new CancellationTokenSource();
                        return _held.Token;
                    }

                    if (ReferenceEquals(owner, this) && _held is not null)
                    {
                        return _held.Token;
                    }

                    changed = registry._changed.Task;
                }

                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        public Task UnlockAsync(CancellationToken cancellationToken = default)
        {
            lock (registry._sync)
            {
                if (registry._lockOwners.TryGetValue(key, out var owner) && ReferenceEquals(owner, this))
                {
                    registry._lockOwners.Remove(key);
                    registry.Signal();
                }

                _held?.Cancel();
                _held = null;
            }

            return Task.CompletedTask;
        }

        public async ValueTask DisposeAsync() => await UnlockAsync().ConfigureAwait(false);
    }
}

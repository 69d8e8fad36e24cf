using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Registry;

/// <summary>
/// The registry on Consul's KV store. A write with a TTL ties the key to a session with the <c>delete</c> behavior, so
/// Consul removes the key when the session is not renewed; writing the key again renews it. Locks hold a session with the
/// <c>release</c> behavior that this process renews; when the session dies the lock is lost.
/// </summary>
public sealed partial class ConsulRegistry(ConsulClient consul, IOptions<RegistryOptions> options, ILogger<ConsulRegistry> logger) : IRegistry
{
    private const int MaxTransactionOperations = 64;

    private readonly string _root = RegistryOptions.NormalizeRoot(options.Value.Root);
    private readonly ConcurrentDictionary<string, TtlSession> _ttlSessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<ConsulRegistryLock, byte> _locks = new();

    public string Root => _root;

    public async Task PutAsync(string key, byte[] value, RegistryWriteOptions? writeOptions = null, CancellationToken cancellationToken = default)
    {
        var full = Full(key);
        if (writeOptions?.Ttl is not { } ttl)
        {
            await consul.KvPutAsync(full, value, null, cancellationToken).ConfigureAwait(false);
            return;
        }

        var session = await RenewOrCreateTtlSessionAsync(full, ttl, cancellationToken).ConfigureAwait(false);
        if (!await consul.KvPutAsync(full, value, new KvWriteOptions { Acquire = session }, cancellationToken).ConfigureAwait(false))
        {
            throw new ConsulException($"Could not write '{full}' with a TTL: the key is held by another session.");
        }
    }

    public async Task<RegistryEntry?> GetAsync(string key, CancellationToken cancellationToken = default)
    {
        var result = await consul.KvGetAsync(Full(key), null, cancellationToken).ConfigureAwait(false);
        return result.Value is null ? null : ToEntry(result.Value);
    }

    public async Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        // Consul's DELETE answers true whether or not the key existed. A transaction of "get" (fails when the key is
        // absent) and "delete" tells the two apart atomically.
        var full = Full(key);
        var result = await consul.TxnAsync([TxnKvOp.Get(full), TxnKvOp.Delete(full)], cancellationToken).ConfigureAwait(false);
        return result.Committed;
    }

    public async Task<bool> ExistsAsync(string key, CancellationToken cancellationToken = default) =>
        await GetAsync(key, cancellationToken).ConfigureAwait(false) is not null;

    public async IAsyncEnumerable<RegistryEntry?> WatchAsync(string key, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var full = Full(key);
        ulong? last = null;
        var first = true;
        await foreach (var result in consul.WatchAsync((query, ct) => consul.KvGetAsync(full, query, ct), cancellationToken).ConfigureAwait(false))
        {
            var current = result.Value?.ModifyIndex ?? 0;
            if (first || current != last)
            {
                first = false;
                last = current;
                yield return result.Value is null ? null : ToEntry(result.Value);
            }
        }
    }

    public async IAsyncEnumerable<IReadOnlyList<RegistryEntry>> WatchTreeAsync(string directory, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var prefix = RegistryOptions.Directory(_root, directory);
        string? last = null;
        await foreach (var result in consul.WatchAsync((query, ct) => consul.KvListAsync(prefix, query, ct), cancellationToken).ConfigureAwait(false))
        {
            var entries = result.Value.Where(pair => pair.Key != prefix).Select(ToEntry).ToArray();
            var signature = string.Join('\n', entries.Select(e => e.Key + "@" + e.LastIndex));
            if (signature != last)
            {
                last = signature;
                yield return entries;
            }
        }
    }

    public IRegistryLock NewLock(string key, TimeSpan? ttl = null)
    {
        var registryLock = new ConsulRegistryLock(consul, Full(key), ttl ?? TimeSpan.FromSeconds(15), logger, l => _locks.TryRemove(l, out _));
        _locks[registryLock] = 0;
        return registryLock;
    }

    public async Task<IReadOnlyList<RegistryEntry>> ListAsync(string directory, CancellationToken cancellationToken = default)
    {
        var prefix = RegistryOptions.Directory(_root, directory);
        var result = await consul.KvListAsync(prefix, null, cancellationToken).ConfigureAwait(false);
        return result.Value.Where(pair => pair.Key != prefix).Select(ToEntry).ToArray();
    }

    public Task DeleteTreeAsync(string directory, CancellationToken cancellationToken = default) =>
        consul.KvDeleteAsync(RegistryOptions.Directory(_root, directory), recurse: true, cancellationToken: cancellationToken);

    public async Task<AtomicPutResult> AtomicPutAsync(string key, byte[] value, RegistryEntry? previous, RegistryWriteOptions? writeOptions = null, CancellationToken cancellationToken = default)
    {
        var full = Full(key);
        var expected = previous?.LastIndex ?? 0;
        if (writeOptions?.Ttl is { } ttl)
        {
            var session = await RenewOrCreateTtlSessionAsync(full, ttl, cancellationToken).ConfigureAwait(false);
            if (!await consul.KvPutAsync(full, value, new KvWriteOptions { Cas = expected, Acquire = session }, cancellationToken).ConfigureAwait(false))
            {
                return new AtomicPutResult(false, null);
            }

            return new AtomicPutResult(true, await GetAsync(key, cancellationToken).ConfigureAwait(false));
        }

        var result = await consul.TxnAsync([TxnKvOp.CheckAndSet(full, value, expected)], cancellationToken).ConfigureAwait(false);
        if (!result.Committed)
        {
            return new AtomicPutResult(false, null);
        }

        var written = result.Results.FirstOrDefault();
        return new AtomicPutResult(true, new RegistryEntry(Relative(full), value, written?.ModifyIndex ?? 0));
    }

    public Task<bool> AtomicDeleteAsync(string key, RegistryEntry previous, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(previous);
        return consul.KvDeleteAsync(Full(key), cas: previous.LastIndex, cancellationToken: cancellationToken);
    }

    public async Task<bool> CommitAsync(IReadOnlyList<RegistryOperation> operations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        if (operations.Count > MaxTransactionOperations)
        {
            throw new ArgumentException($"A Consul transaction holds at most {MaxTransactionOperations} operations; this one has {operations.Count}.", nameof(operations));
        }

        var ops = operations.Select(op => op switch
        {
            RegistryOperation.Set set => TxnKvOp.Set(Full(set.Key), set.Value),
            RegistryOperation.CheckAndSet cas => TxnKvOp.CheckAndSet(Full(cas.Key), cas.Value, cas.LastIndex),
            RegistryOperation.Delete delete => TxnKvOp.Delete(Full(delete.Key)),
            RegistryOperation.CheckAndDelete delete => TxnKvOp.DeleteIfIndex(Full(delete.Key), delete.LastIndex),
            RegistryOperation.CheckIndex check => TxnKvOp.CheckIndex(Full(check.Key), check.LastIndex),
            RegistryOperation.CheckNotExists check => TxnKvOp.CheckNotExists(Full(check.Key)),
            _ => throw new ArgumentException($"Unknown registry operation {op.GetType().Name}.", nameof(operations)),
        }).ToArray();
        var result = await consul.TxnAsync(ops, cancellationToken).ConfigureAwait(false);
        return result.Committed;
    }

    public async Task CloseAsync()
    {
        foreach (var registryLock in _locks.Keys)
        {
            await registryLock.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var (key, session) in _ttlSessions)
        {
            _ttlSessions.TryRemove(key, out _);
            try
            {
                await consul.SessionDestroyAsync(session.Id).ConfigureAwait(false);
            }
            catch (ConsulException e)
            {
                LogSessionNotDestroyed(logger, e, key);
            }
        }
    }

    public async ValueTask DisposeAsync() => await CloseAsync().ConfigureAwait(false);

    private async Task<string> RenewOrCreateTtlSessionAsync(string fullKey, TimeSpan ttl, CancellationToken cancellationToken)
    {
        if (_ttlSessions.TryGetValue(fullKey, out var existing) && existing.Ttl == ttl
            && await consul.SessionRenewAsync(existing.Id, cancellationToken).ConfigureAwait(false) is not null)
        {
            return existing.Id;
        }

        var id = await consul.SessionCreateAsync(
            new SessionCreateRequest
            {
                Name = "carml-ttl " + fullKey,
                TTL = ConsulDuration.Format(ttl),
                Behavior = SessionBehaviors.Delete,
                LockDelay = "0s",
                NodeChecks = [],
            },
            cancellationToken).ConfigureAwait(false);
        _ttlSessions[fullKey] = new TtlSession(id, ttl);
        if (existing is not null)
        {
            try
            {
                await consul.SessionDestroyAsync(existing.Id, cancellationToken).ConfigureAwait(false);
            }
            catch (ConsulException e)
            {
                LogSessionNotDestroyed(logger, e, fullKey);
            }
        }

        return id;
    }

    private string Full(string key)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        return RegistryOptions.Join(_root, key);
    }

    private string Relative(string fullKey) => fullKey.StartsWith(_root, StringComparison.Ordinal) ? fullKey[_root.Length..] : fullKey;

    private RegistryEntry ToEntry(KvPair pair) => new(Relative(pair.Key), pair.Value ?? [], pair.ModifyIndex);

    [LoggerMessage(EventId = 5101, Level = LogLevel.Warning, Message = "Could not destroy the TTL session of {Key}; Consul will expire it")]
    private static partial void LogSessionNotDestroyed(ILogger logger, Exception exception, string key);

    private sealed record TtlSession(string Id, TimeSpan Ttl);
}

/// <summary>
/// A lock on one Consul key: a session with the <c>release</c> behavior acquires the key and is renewed every third of its
/// TTL; if a renewal finds the session gone, the lock is lost and the token returned by <see cref="LockAsync"/> is cancelled.
/// </summary>
internal sealed partial class ConsulRegistryLock(ConsulClient consul, string key, TimeSpan ttl, ILogger logger, Action<ConsulRegistryLock> onDisposed) : IRegistryLock
{
    private static readonly TimeSpan LockDelayRetry = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _session;
    private CancellationTokenSource? _held;
    private Task? _renewal;

    public async Task<CancellationToken> LockAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_held is { IsCancellationRequested: false })
            {
                return _held.Token;
            }

            _session = await consul.SessionCreateAsync(
                new SessionCreateRequest { Name = "carml-lock " + key, TTL = ConsulDuration.Format(ttl), Behavior = SessionBehaviors.Release, LockDelay = "0s", NodeChecks = [] },
                cancellationToken).ConfigureAwait(false);
            var renewal = new CancellationTokenSource();
            _renewal = RenewAsync(_session, renewal);

            ulong index = 0;
            var refusedWhileFree = false;
            while (true)
            {
                if (await consul.KvPutAsync(key, [], new KvWriteOptions { Acquire = _session }, cancellationToken).ConfigureAwait(false))
                {
                    _held = renewal;
                    return renewal.Token;
                }

                // Held by someone else: wait until the key changes (released, deleted), then try again at once. Free
                // and refused again: a lock-delay is in effect, which no key change announces, so wait a bounded time
                // instead of blocking.
                var current = await consul.KvGetAsync(key, index == 0 ? null : new ConsulQuery(index, consul.Options.BlockingWait), cancellationToken).ConfigureAwait(false);
                index = current.Index < index ? 0 : Math.Max(current.Index, 1);
                if (current.Value?.Session is not { Length: > 0 })
                {
                    index = 0;
                    if (refusedWhileFree)
                    {
                        await Task.Delay(LockDelayRetry, cancellationToken).ConfigureAwait(false);
                    }

                    refusedWhileFree = true;
                }
                else
                {
                    refusedWhileFree = false;
                }
            }
        }
        catch
        {
            await ReleaseAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task UnlockAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await ReleaseAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await UnlockAsync().ConfigureAwait(false);
        onDisposed(this);
    }

    private async Task ReleaseAsync(CancellationToken cancellationToken)
    {
        var session = _session;
        _session = null;
        var held = _held;
        _held = null;
        if (held is not null)
        {
            await held.CancelAsync().ConfigureAwait(false);
        }

        if (session is null)
        {
            return;
        }

        try
        {
            await consul.KvPutAsync(key, [], new KvWriteOptions { Release = session }, cancellationToken).ConfigureAwait(false);
            await consul.SessionDestroyAsync(session, cancellationToken).ConfigureAwait(false);
        }
        catch (ConsulException e)
        {
            LogReleaseFailed(logger, e, key);
        }
    }

    private async Task RenewAsync(string session, CancellationTokenSource lost)
    {
        try
        {
            while (!lost.IsCancellationRequested)
            {
                await Task.Delay(ttl / 3, lost.Token).ConfigureAwait(false);
                SessionEntry? renewed;
                try
                {
                    renewed = await consul.SessionRenewAsync(session, lost.Token).ConfigureAwait(false);
                }
                catch (ConsulUnavailableException e)
                {
                    LogRenewFailed(logger, e, key);
                    continue;
                }

                if (renewed is null)
                {
                    LogLockLost(logger, key);
                    await lost.CancelAsync().ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Unlocked or lost.
        }
    }

    [LoggerMessage(EventId = 5111, Level = LogLevel.Warning, Message = "Lost the lock on {Key}: its Consul session expired")]
    private static partial void LogLockLost(ILogger logger, string key);

    [LoggerMessage(EventId = 5112, Level = LogLevel.Warning, Message = "Could not renew the session of the lock on {Key}; retrying")]
    private static partial void LogRenewFailed(ILogger logger, Exception exception, string key);

    [LoggerMessage(EventId = 5113, Level = LogLevel.Warning, Message = "Could not release the lock on {Key}; its session will expire")]
    private static partial void LogReleaseFailed(ILogger logger, Exception exception, string key);
}

using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Carml.Orleans.Registry.Consul;

/// <summary>Options of a <see cref="ConsulLeaderElection"/>.</summary>
public sealed record ConsulLeaderElectionOptions
{
    /// <summary>The full key of the lock (e.g. <c>carml/locks/model-publisher</c>).</summary>
    public required string LockKey { get; init; }

    /// <summary>The session's TTL (Consul accepts 10 s–24 h; it invalidates a session not renewed for up to twice this). Renewed every third.</summary>
    public TimeSpan SessionTtl { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// After the holder's session is invalidated, nobody can acquire its keys for this long (Consul: 0–60 s, default 15 s),
    /// so a holder that lost its session while partitioned has stopped before the next one starts.
    /// </summary>
    public TimeSpan LockDelay { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long to wait before trying again when the lock is free but the acquire was refused (a lock-delay is in effect).</summary>
    public TimeSpan LockRetryInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Who campaigns: the session's name and the lock key's value while held (shown in the Consul UI).</summary>
    public string Candidate { get; init; } = Environment.MachineName;

    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(LockKey);
        if (SessionTtl < TimeSpan.FromSeconds(10) || SessionTtl > TimeSpan.FromHours(24))
        {
            throw new ArgumentOutOfRangeException(nameof(SessionTtl), SessionTtl, "A Consul session TTL is between 10 s and 24 h.");
        }

        if (LockDelay < TimeSpan.Zero || LockDelay > TimeSpan.FromSeconds(60))
        {
            throw new ArgumentOutOfRangeException(nameof(LockDelay), LockDelay, "A Consul lock-delay is between 0 and 60 s.");
        }

        if (LockRetryInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(LockRetryInterval), LockRetryInterval, "The lock retry interval must be positive.");
        }
    }
}

/// <summary>
/// Consul's leader-election pattern on one lock key: a session (TTL, lock-delay, behavior <c>delete</c>, no node checks)
/// renewed every third of its TTL acquires the key with <c>?acquire=</c>. A candidate that is refused waits on a blocking
/// query while another session holds the key, and retries on a timer while the key is free but a lock-delay is in effect.
/// The leader watches the key and its session: the token <see cref="AcquireAsync"/> returns is cancelled as soon as the
/// key is no longer held by this session (released, deleted, its session invalidated or not renewable). Keys written with
/// <see cref="PutOwnedAsync"/> are held by the same session, so they live exactly as long as it does and renewing the
/// session keeps them all alive without rewriting them.
/// </summary>
public sealed partial class ConsulLeaderElection : IAsyncDisposable
{
    private readonly ConsulClient _consul;
    private readonly ConsulLeaderElectionOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private SessionState? _session;
    private CancellationTokenSource? _leading;

    public ConsulLeaderElection(ConsulClient consul, ConsulLeaderElectionOptions options, ILogger logger, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _consul = consul;
        _options = options;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The session this candidate campaigns with; null before the first campaign.</summary>
    public string? Session => _session?.Id;

    /// <summary>True while this candidate holds the lock as far as it knows.</summary>
    public bool IsLeader => _leading is { IsCancellationRequested: false };

    /// <summary>Waits until this candidate holds the lock. The returned token is cancelled when the leadership is lost.</summary>
    /// <exception cref="ConsulUnavailableException">Consul is unreachable; call again to keep campaigning.</exception>
    public async Task<CancellationToken> AcquireAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_leading is { IsCancellationRequested: false } leading)
            {
                return leading.Token;
            }

            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var session = await EnsureSessionAsync(cancellationToken).ConfigureAwait(false);
                bool acquired;
                try
                {
                    acquired = await _consul.KvPutAsync(_options.LockKey, Encoding.UTF8.GetBytes(_options.Candidate), new KvWriteOptions { Acquire = session.Id }, cancellationToken).ConfigureAwait(false);
                }
                catch (ConsulException e) when (e is not ConsulUnavailableException and not ConsulAclException && e.StatusCode == HttpStatusCode.InternalServerError)
                {
                    // "invalid session": it expired (e.g. while Consul was unreachable). Campaign with a new one.
                    LogSessionInvalid(_logger, _options.LockKey, e.Message);
                    await session.StopAsync().ConfigureAwait(false);
                    continue;
                }

                if (acquired)
                {
                    _leading?.Dispose();
                    _leading = CancellationTokenSource.CreateLinkedTokenSource(session.Lost);
                    session.Monitor = MonitorAsync(session, _leading);
                    LogElected(_logger, _options.LockKey, session.Id);
                    return _leading.Token;
                }

                // Refused: find out why, as Consul's own lock does. Held by another session → block until the key changes.
                // Free → a lock-delay is in effect, which no key change announces → try again after a bounded wait.
                var current = await _consul.KvGetAsync(_options.LockKey, null, cancellationToken).ConfigureAwait(false);
                if (current.Value?.Session is { Length: > 0 } holder && holder != session.Id)
                {
                    await _consul.KvGetAsync(_options.LockKey, new ConsulQuery(Math.Max(current.Index, 1), _consul.Options.BlockingWait), cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await Task.Delay(_options.LockRetryInterval, _time, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Writes a key held by the leader's session (<c>?acquire=</c>): it is deleted when the session is invalidated and kept
    /// alive by the session's renewals. False when another session holds the key or a lock-delay on it is in effect.
    /// </summary>
    /// <exception cref="InvalidOperationException">This candidate is not the leader.</exception>
    public Task<bool> PutOwnedAsync(string key, byte[] value, CancellationToken cancellationToken = default)
    {
        var session = IsLeader ? _session : null;
        if (session is null)
        {
            throw new InvalidOperationException($"Only the holder of '{_options.LockKey}' writes keys with its session.");
        }

        return _consul.KvPutAsync(key, value, new KvWriteOptions { Acquire = session.Id }, cancellationToken);
    }

    /// <summary>
    /// Gives the lock up: releases the key (no lock-delay: the session still exists) and destroys the session, which deletes
    /// every key it still holds (and puts a lock-delay on them: delete owned keys first if a successor should write them at once).
    /// </summary>
    public async Task ResignAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var leading = _leading;
            _leading = null;
            var session = _session;
            _session = null;
            if (leading is not null)
            {
                await leading.CancelAsync().ConfigureAwait(false);
            }

            if (session is null)
            {
                return;
            }

            await session.StopAsync().ConfigureAwait(false);
            try
            {
                if (leading is not null)
                {
                    await _consul.KvPutAsync(_options.LockKey, Encoding.UTF8.GetBytes(_options.Candidate), new KvWriteOptions { Release = session.Id }, cancellationToken).ConfigureAwait(false);
                }

                await _consul.SessionDestroyAsync(session.Id, cancellationToken).ConfigureAwait(false);
                LogResigned(_logger, _options.LockKey, session.Id);
            }
            catch (ConsulException e)
            {
                LogResignFailed(_logger, e, _options.LockKey);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await ResignAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    private async Task<SessionState> EnsureSessionAsync(CancellationToken cancellationToken)
    {
        if (_session is { Lost.IsCancellationRequested: false } current)
        {
            return current;
        }

        if (_session is { } stale)
        {
            await stale.StopAsync().ConfigureAwait(false);
        }

        var id = await _consul.SessionCreateAsync(
            new SessionCreateRequest
            {
                Name = "carml-leader " + _options.LockKey + " " + _options.Candidate,
                TTL = ConsulDuration.Format(_options.SessionTtl),
                Behavior = SessionBehaviors.Delete,
                LockDelay = ConsulDuration.Format(_options.LockDelay),
                NodeChecks = [],
            },
            cancellationToken).ConfigureAwait(false);
        var session = new SessionState(id);
        session.Renewal = RenewAsync(session);
        _session = session;
        return session;
    }

    private async Task RenewAsync(SessionState session)
    {
        var lastRenewed = _time.GetUtcNow(); // created just now
        try
        {
            while (!session.Stopping.IsCancellationRequested)
            {
                await Task.Delay(_options.SessionTtl / 3, _time, session.Stopping.Token).ConfigureAwait(false);
                SessionEntry? renewed;
                try
                {
                    renewed = await _consul.SessionRenewAsync(session.Id, session.Stopping.Token).ConfigureAwait(false);
                }
                catch (ConsulException e) when (e is not ConsulAclException)
                {
                    // Unreachable: Consul invalidates the session once a TTL passes without renewal. Past that, this
                    // process must not believe it still leads (a partitioned leader steps down on its own).
                    LogRenewFailed(_logger, e, _options.LockKey);
                    if (_time.GetUtcNow() - lastRenewed > _options.SessionTtl)
                    {
                        LogSessionGone(_logger, _options.LockKey, session.Id);
                        await session.LoseAsync().ConfigureAwait(false);
                        return;
                    }

                    continue;
                }

                if (renewed is null)
                {
                    LogSessionGone(_logger, _options.LockKey, session.Id);
                    await session.LoseAsync().ConfigureAwait(false);
                    return;
                }

                lastRenewed = _time.GetUtcNow();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
        catch (ConsulAclException e)
        {
            LogRenewFailed(_logger, e, _options.LockKey);
            await session.LoseAsync().ConfigureAwait(false);
        }
    }

    /// <summary>While leading: watch the lock key; any change that leaves it without this session ends the leadership.</summary>
    /// <remarks>
    /// A lock lost while the session lives on (the key deleted or taken by an operator) ends the session too: the keys
    /// it holds would otherwise stay, frozen, where the next leader cannot write them, for as long as this process renews it.
    /// </remarks>
    private async Task MonitorAsync(SessionState session, CancellationTokenSource leading)
    {
        try
        {
            await foreach (var result in _consul.WatchAsync((query, ct) => _consul.KvGetAsync(_options.LockKey, query, ct), leading.Token).ConfigureAwait(false))
            {
                if (result.Value?.Session != session.Id)
                {
                    LogLockLost(_logger, _options.LockKey, session.Id);
                    await session.LoseAsync().ConfigureAwait(false);
                    await leading.CancelAsync().ConfigureAwait(false);
                    try
                    {
                        await _consul.SessionDestroyAsync(session.Id, CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (ConsulException e)
                    {
                        // It expires by itself once no longer renewed.
                        LogResignFailed(_logger, e, _options.LockKey);
                    }

                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Resigned or lost.
        }
        catch (ConsulException e)
        {
            LogMonitorFailed(_logger, e, _options.LockKey);
            await leading.CancelAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 5401, Level = LogLevel.Information, Message = "Elected: holding {Key} with session {Session}")]
    private static partial void LogElected(ILogger logger, string key, string session);

    [LoggerMessage(EventId = 5402, Level = LogLevel.Warning, Message = "Lost the lock {Key} held with session {Session}")]
    private static partial void LogLockLost(ILogger logger, string key, string session);

    [LoggerMessage(EventId = 5403, Level = LogLevel.Warning, Message = "The session {Session} campaigning for {Key} is gone (expired or destroyed)")]
    private static partial void LogSessionGone(ILogger logger, string key, string session);

    [LoggerMessage(EventId = 5404, Level = LogLevel.Warning, Message = "Could not renew the session campaigning for {Key}; retrying")]
    private static partial void LogRenewFailed(ILogger logger, Exception exception, string key);

    [LoggerMessage(EventId = 5405, Level = LogLevel.Warning, Message = "Consul refused the session acquiring {Key} ({Reason}); campaigning with a new session")]
    private static partial void LogSessionInvalid(ILogger logger, string key, string reason);

    [LoggerMessage(EventId = 5406, Level = LogLevel.Information, Message = "Resigned {Key}: released it and destroyed session {Session}")]
    private static partial void LogResigned(ILogger logger, string key, string session);

    [LoggerMessage(EventId = 5407, Level = LogLevel.Warning, Message = "Could not release {Key} or destroy its session; Consul will expire it")]
    private static partial void LogResignFailed(ILogger logger, Exception exception, string key);

    [LoggerMessage(EventId = 5408, Level = LogLevel.Warning, Message = "Could not watch the lock {Key}; giving the leadership up")]
    private static partial void LogMonitorFailed(ILogger logger, Exception exception, string key);

    private sealed class SessionState(string id)
    {
        private readonly CancellationTokenSource _lost = new();

        public string Id { get; } = id;

        public CancellationTokenSource Stopping { get; } = new();

        public CancellationToken Lost => _lost.Token;

        public Task? Renewal { get; set; }

        public Task? Monitor { get; set; }

        public Task LoseAsync() => _lost.CancelAsync();

        public async Task StopAsync()
        {
            await Stopping.CancelAsync().ConfigureAwait(false);
            await _lost.CancelAsync().ConfigureAwait(false);
            foreach (var task in new[] { Renewal, Monitor })
            {
                if (task is not null)
                {
                    await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }
        }
    }
}

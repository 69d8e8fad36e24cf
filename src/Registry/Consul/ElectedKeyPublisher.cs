using Microsoft.Extensions.Logging;

namespace Carml.Orleans.Registry.Consul;

/// <summary>Options of an <see cref="ElectedKeyPublisher"/>.</summary>
public sealed record ElectedKeyPublisherOptions
{
    /// <summary>The election: lock key, session TTL (the published keys live as long as the session), lock-delay.</summary>
    public required ConsulLeaderElectionOptions Election { get; init; }

    /// <summary>The full key prefix the publisher owns (ends with <c>/</c>); keys under it that it does not publish are deleted.</summary>
    public required string Prefix { get; init; }

    /// <summary>How often the leader reads the desired keys and writes what changed.</summary>
    public TimeSpan Period { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long to wait after a failure (Consul unreachable, the source failing) before trying again.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Publishes a set of keys under one prefix from exactly one process of the cluster at a time, elected through Consul
/// (<see cref="ConsulLeaderElection"/>). Only the leader reads the desired keys (the source may be expensive: grain
/// calls) and writes a key only when its value differs from the bytes it last wrote there; the keys are held by the
/// leader's session, so renewing the session keeps them alive and they disappear if the leader dies. Keys that are no
/// longer desired are deleted at the next period. On becoming leader it deletes stale keys under the prefix; on a clean
/// stop it deletes its keys and resigns, so a successor takes over at once. Consul being unreachable or the source
/// failing is logged and retried; nothing is thrown out of <see cref="RunAsync"/> but cancellation.
/// </summary>
public sealed partial class ElectedKeyPublisher(
    ConsulClient consul,
    ElectedKeyPublisherOptions options,
    Func<CancellationToken, Task<IReadOnlyDictionary<string, byte[]>>> desiredKeys,
    ILogger logger,
    TimeProvider? time = null)
{
    private const int MaxTransactionOperations = 64;

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Dictionary<string, byte[]> _written = new(StringComparer.Ordinal);
    private ConsulLeaderElection? _election;
    private CancellationToken _term;

    /// <summary>True while this publisher is the elected one.</summary>
    public bool IsLeader => _election?.IsLeader == true;

    /// <summary>The session of this publisher's campaign (the leader's holds the lock and every published key).</summary>
    public string? Session => _election?.Session;

    /// <summary>Campaigns, and while elected publishes every <see cref="ElectedKeyPublisherOptions.Period"/>, until cancelled.</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Prefix);
        if (!options.Prefix.EndsWith('/'))
        {
            throw new ArgumentException("The prefix must end with '/' so that it does not match its siblings.", nameof(options));
        }

        await using var election = new ConsulLeaderElection(consul, options.Election, logger, _time);
        _election = election;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    var lost = await election.AcquireAsync(stoppingToken).ConfigureAwait(false);
                    await LeadAsync(lost, stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested && e is not ConsulAclException)
                {
                    LogFailed(logger, e, options.Prefix);
                    await DelayAsync(options.RetryDelay, stoppingToken).ConfigureAwait(false);
                }
                catch (ConsulAclException e)
                {
                    // A token problem is not fixed by retrying fast; say it loudly and retry slowly.
                    LogAclRefused(logger, e, options.Prefix);
                    await DelayAsync(options.RetryDelay * 6, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            await StepDownAsync(election).ConfigureAwait(false);
            _election = null;
        }
    }

    private async Task LeadAsync(CancellationToken lost, CancellationToken stoppingToken)
    {
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(lost, stoppingToken);

        // A new term starts from nothing written (the previous one's keys went with its session). The same term resumed
        // after a failure (Consul or the source unreachable for a while) keeps what it wrote: unchanged keys stay unwritten.
        if (lost != _term)
        {
            _term = lost;
            _written.Clear();
        }

        try
        {
            do
            {
                await PublishAsync(leading.Token).ConfigureAwait(false);
            }
            while (await DelayAsync(options.Period, leading.Token).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (lost.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            // Lost the leadership mid-publication: campaign again.
        }

        if (lost.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            LogNoLongerLeader(logger, options.Prefix);
            _written.Clear();
        }
    }

    private async Task PublishAsync(CancellationToken cancellationToken)
    {
        var desired = await desiredKeys(cancellationToken).ConfigureAwait(false);
        var deletions = _written.Keys.Where(key => !desired.ContainsKey(key)).ToList();

        // One key listing per period reconciles with what Consul really holds: a key someone deleted is written again
        // (the change-only rule alone would never rewrite it), and keys a previous leader left behind that nobody wants
        // any more are deleted.
        var existing = (await consul.KvKeysAsync(options.Prefix, null, null, cancellationToken).ConfigureAwait(false)).Value
            .Where(key => !key.EndsWith('/'))
            .ToHashSet(StringComparer.Ordinal);
        foreach (var missing in _written.Keys.Where(key => !existing.Contains(key)).ToList())
        {
            _written.Remove(missing);
        }

        deletions.AddRange(existing.Where(key => !desired.ContainsKey(key)));

        foreach (var (key, value) in desired)
        {
            if (!key.StartsWith(options.Prefix, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"The key '{key}' is not under the publisher's prefix '{options.Prefix}'.");
            }

            if (_written.TryGetValue(key, out var last) && last.AsSpan().SequenceEqual(value))
            {
                continue;
            }

            if (await _election!.PutOwnedAsync(key, value, cancellationToken).ConfigureAwait(false))
            {
                _written[key] = value;
                LogWritten(logger, key);
            }
            else
            {
                // Held by another session (a stale writer's TTL session) or under a lock-delay: try again next period.
                _written.Remove(key);
                LogHeldElsewhere(logger, key);
            }
        }

        await DeleteAsync(deletions.Distinct(StringComparer.Ordinal).ToArray(), cancellationToken).ConfigureAwait(false);
    }

    private async Task DeleteAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        foreach (var chunk in keys.Chunk(MaxTransactionOperations))
        {
            var result = await consul.TxnAsync(chunk.Select(TxnKvOp.Delete).ToArray(), cancellationToken).ConfigureAwait(false);
            if (!result.Committed)
            {
                throw new ConsulException($"Consul rolled back deleting {chunk.Length} key(s) under '{options.Prefix}': {string.Join("; ", result.Errors.Select(e => e.What))}");
            }

            foreach (var key in chunk)
            {
                _written.Remove(key);
                LogDeleted(logger, key);
            }
        }
    }

    /// <summary>A clean stop: delete the keys first (no lock-delay on them for the successor), then release and resign.</summary>
    private async Task StepDownAsync(ConsulLeaderElection election)
    {
        using var timeout = new CancellationTokenSource(consul.Options.RequestTimeout * 2);
        if (election.IsLeader && _written.Count > 0)
        {
            try
            {
                await DeleteAsync(_written.Keys.ToArray(), timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ConsulException or OperationCanceledException)
            {
                LogFailed(logger, e, options.Prefix);
            }
        }

        _written.Clear();
        try
        {
            await election.ResignAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e)
        {
            LogFailed(logger, e, options.Prefix);
        }
    }

    /// <summary>Waits; false when cancelled instead of throwing.</summary>
    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return !cancellationToken.IsCancellationRequested;
    }

    [LoggerMessage(EventId = 5411, Level = LogLevel.Warning, Message = "Could not publish the keys under {Prefix} (Consul or the source unreachable); will retry")]
    private static partial void LogFailed(ILogger logger, Exception exception, string prefix);

    [LoggerMessage(EventId = 5412, Level = LogLevel.Error, Message = "Consul refused the ACL token publishing under {Prefix}; fix the token or its policy (retrying slowly)")]
    private static partial void LogAclRefused(ILogger logger, Exception exception, string prefix);

    [LoggerMessage(EventId = 5413, Level = LogLevel.Information, Message = "No longer the publisher of {Prefix}; campaigning again")]
    private static partial void LogNoLongerLeader(ILogger logger, string prefix);

    [LoggerMessage(EventId = 5414, Level = LogLevel.Debug, Message = "Published {Key}")]
    private static partial void LogWritten(ILogger logger, string key);

    [LoggerMessage(EventId = 5415, Level = LogLevel.Debug, Message = "Deleted {Key}")]
    private static partial void LogDeleted(ILogger logger, string key);

    [LoggerMessage(EventId = 5416, Level = LogLevel.Debug, Message = "{Key} is held by another session or under a lock-delay; retrying next period")]
    private static partial void LogHeldElsewhere(ILogger logger, string key);
}

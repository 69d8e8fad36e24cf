using Carml.Orleans.Core.Telemetry;

namespace Carml.Orleans.Gateway.Routing;

/// <summary>
/// What the gateway's replica choice and failover did since start, as plain monotonic counters for a metrics exporter
/// to read (<see cref="Snapshot"/>). Updated with interlocked increments; reading is lock-free.
/// </summary>
public sealed class FailoverCounters
{
    private long _picks;
    private long _backoffSkips;
    private long _retries;
    private long _recovered;
    private long _giveUps;
    private long _replicaFailures;
    private long _staleRoutes;

    /// <summary>Replica choices made (one per try).</summary>
    public long Picks => Volatile.Read(ref _picks);

    /// <summary>Choices that passed over at least one replica in back-off.</summary>
    public long BackoffSkips => Volatile.Read(ref _backoffSkips);

    /// <summary>Tries after the first.</summary>
    public long Retries => Volatile.Read(ref _retries);

    /// <summary>Requests that succeeded after at least one retry.</summary>
    public long Recovered => Volatile.Read(ref _recovered);

    /// <summary>Requests answered UNAVAILABLE or DEADLINE_EXCEEDED because tries or time ran out.</summary>
    public long GiveUps => Volatile.Read(ref _giveUps);

    /// <summary>Replicas put in back-off after a silo-gone or unavailable failure.</summary>
    public long ReplicaFailures => Volatile.Read(ref _replicaFailures);

    /// <summary>Times a cached route was used past its time because refreshing it failed (the model grain's silo was gone).</summary>
    public long StaleRoutes => Volatile.Read(ref _staleRoutes);

    public FailoverSnapshot Snapshot() => new(Picks, BackoffSkips, Retries, Recovered, GiveUps, ReplicaFailures, StaleRoutes);

    internal void Picked(bool skippedBackoff)
    {
        Interlocked.Increment(ref _picks);
        if (skippedBackoff)
        {
            Interlocked.Increment(ref _backoffSkips);
        }
    }

    internal void Retried()
    {
        Interlocked.Increment(ref _retries);
        CarmlTelemetry.FailoverRetries.Add(1);
    }

    internal void RecoveredAfterRetry() => Interlocked.Increment(ref _recovered);

    internal void GaveUp()
    {
        Interlocked.Increment(ref _giveUps);
        CarmlTelemetry.FailoverGiveUps.Add(1);
    }

    internal void ReplicaFailed()
    {
        Interlocked.Increment(ref _replicaFailures);
        CarmlTelemetry.ReplicaFailures.Add(1);
    }

    internal void UsedStaleRoute() => Interlocked.Increment(ref _staleRoutes);
}

/// <summary>The counters of <see cref="FailoverCounters"/> at one moment.</summary>
public sealed record FailoverSnapshot(long Picks, long BackoffSkips, long Retries, long Recovered, long GiveUps, long ReplicaFailures, long StaleRoutes);

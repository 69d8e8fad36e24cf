namespace Carml.Orleans.Gateway.Routing;

/// <summary>
/// Picks which replica of one model version serves the next request, from what this gateway sees: requests it has
/// outstanding on each replica, and replicas that just failed because their silo is gone (skipped for a back-off while
/// a healthy one exists). Power of two random choices: draw two distinct healthy replicas, the one with fewer
/// outstanding requests wins, the first drawn on a tie. One replica, or none healthy, still gets an answer, so a retry
/// on the same key can reach the activation Orleans re-creates elsewhere. Allocation-free and lock-free.
/// </summary>
public sealed class ReplicaBalancer
{
    private readonly Slot[] _slots;
    private readonly TimeProvider _time;

    public ReplicaBalancer(int replicas, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(replicas, 1);
        _slots = new Slot[replicas];
        _time = time;
    }

    public int Count => _slots.Length;

    /// <summary>Requests this gateway has on the replica right now.</summary>
    public int Outstanding(int replica) => Volatile.Read(ref _slots[replica].Outstanding);

    /// <summary>Whether the replica is being skipped after a failure.</summary>
    public bool IsBackingOff(int replica) => IsBackingOff(replica, _time.GetTimestamp());

    /// <summary>
    /// The replica for the next try. <paramref name="exclude"/> (the replica that just failed, or -1) is avoided whenever
    /// another exists. <paramref name="skippedBackoff"/> says whether a replica in back-off was passed over.
    /// </summary>
    public int Pick(Random random, int exclude, out bool skippedBackoff)
    {
        skippedBackoff = false;
        var count = _slots.Length;
        if (count == 1)
        {
            return 0;
        }

        var now = _time.GetTimestamp();
        var healthy = 0;
        for (var i = 0; i < count; i++)
        {
            if (i == exclude)
            {
                continue;
            }

            if (IsBackingOff(i, now))
            {
                skippedBackoff = true;
            }
            else
            {
                healthy++;
            }
        }

        switch (healthy)
        {
            case 0:
                return LeastBackedOff(exclude, now);
            case 1:
                return NthHealthy(0, exclude, now);
        }

        var first = random.Next(healthy);
        var second = random.Next(healthy - 1);
        if (second >= first)
        {
            second++;
        }

        var a = NthHealthy(first, exclude, now);
        var b = NthHealthy(second, exclude, now);
        return Outstanding(b) < Outstanding(a) ? b : a;
    }

    /// <summary>Counts a request in on the replica; pair with <see cref="Finished"/>.</summary>
    public void Started(int replica) => Interlocked.Increment(ref _slots[replica].Outstanding);

    public void Finished(int replica) => Interlocked.Decrement(ref _slots[replica].Outstanding);

    /// <summary>The replica answered: it leaves back-off at once.</summary>
    public void Succeeded(int replica)
    {
        if (Volatile.Read(ref _slots[replica].BackoffUntil) != 0)
        {
            Volatile.Write(ref _slots[replica].BackoffUntil, 0);
        }
    }

    /// <summary>The replica failed because its silo is gone or it refused: skip it for <paramref name="backoff"/> while others are healthy.</summary>
    public void Failed(int replica, TimeSpan backoff)
    {
        var until = _time.GetTimestamp() + (long)(backoff.TotalSeconds * _time.TimestampFrequency);
        Volatile.Write(ref _slots[replica].BackoffUntil, Math.Max(until, 1));
    }

    private bool IsBackingOff(int replica, long now)
    {
        var until = Volatile.Read(ref _slots[replica].BackoffUntil);
        return until != 0 && now < until;
    }

    private int NthHealthy(int n, int exclude, long now)
    {
        for (var i = 0; i < _slots.Length; i++)
        {
            if (i != exclude && !IsBackingOff(i, now) && n-- == 0)
            {
                return i;
            }
        }

        // Another request changed a back-off between the count and this pass: any candidate will do.
        return LeastBackedOff(exclude, now);
    }

    /// <summary>Every candidate is in back-off: the one whose back-off ends first (lowest index on a tie).</summary>
    private int LeastBackedOff(int exclude, long now)
    {
        var best = -1;
        var bestUntil = long.MaxValue;
        for (var i = 0; i < _slots.Length; i++)
        {
            var until = Volatile.Read(ref _slots[i].BackoffUntil);
            if (i != exclude && until < bestUntil)
            {
                best = i;
                bestUntil = until;
            }
        }

        return best < 0 ? exclude : best;
    }

    private struct Slot
    {
        public int Outstanding;
        public long BackoffUntil;
    }
}

namespace Carml.Orleans.Grains.Placement;

/// <summary>
/// This silo's view of how many model replicas each silo hosts: the counts the agents last reported (refreshed with the
/// agent heartbeat), plus the placements this silo's director made since, so replicas placed in a burst (a model's
/// replica set loading in parallel) spread before the next report arrives. Thread-safe.
/// </summary>
public sealed class SiloLoadView
{
    private readonly Lock _lock = new();
    private Dictionary<string, int> _reported = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _placedSince = new(StringComparer.Ordinal);

    public int LoadOf(string silo)
    {
        lock (_lock)
        {
            return _reported.GetValueOrDefault(silo) + _placedSince.GetValueOrDefault(silo);
        }
    }

    /// <summary>Counts a replica this silo's director just placed.</summary>
    public void RecordPlacement(string silo)
    {
        lock (_lock)
        {
            _placedSince[silo] = _placedSince.GetValueOrDefault(silo) + 1;
        }
    }

    /// <summary>Replaces the view with the agents' reports (which include the placements made before them).</summary>
    public void Update(IEnumerable<KeyValuePair<string, int>> replicasBySilo)
    {
        var reported = new Dictionary<string, int>(replicasBySilo, StringComparer.Ordinal);
        lock (_lock)
        {
            _reported = reported;
            _placedSince.Clear();
        }
    }
}

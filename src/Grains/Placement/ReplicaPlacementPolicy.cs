using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains.Placement;

/// <summary>A silo the placement may choose: what it offers and how many replicas it already hosts.</summary>
public sealed record PlacementCandidate(SiloCapabilities Capabilities, int Load)
{
    public string Silo => Capabilities.Silo;
}

/// <summary>The chosen silo, or why there is none.</summary>
public sealed record PlacementDecision(string? Silo, string? UnschedulableReason)
{
    public bool IsSchedulable => Silo is not null;
}

/// <summary>
/// Where a model replica goes, as a pure function of the silos and the replica's <see cref="ReplicaPlacement"/>:
/// <list type="number">
/// <item>Eligible: <c>gpu</c> needs a GPU silo (whose largest GPU has at least <c>MinGpuMemoryBytes</c>); <c>cpu</c> and
/// <c>any</c> take every silo, and <c>any</c> keeps only the GPU silos when there are some.</item>
/// <item>Spread: silos in <c>AvoidSilos</c> (holding the model's other replicas) are dropped while another eligible silo is left.</item>
/// <item>Least loaded: the fewest hosted replicas wins; a tie goes to a stable hash of the grain key, so the same replica
/// lands on the same silo for the same inputs and different replicas of a model spread over tied silos.</item>
/// </list>
/// </summary>
public static class ReplicaPlacementPolicy
{
    public static PlacementDecision Choose(IReadOnlyList<PlacementCandidate> silos, ReplicaPlacement placement, string grainKey)
    {
        var eligible = silos.Where(s => Meets(s.Capabilities, placement)).ToList();
        if (eligible.Count == 0)
        {
            return new PlacementDecision(null, UnschedulableReason(silos.Select(s => s.Capabilities).ToArray(), placement));
        }

        if (placement.Device == DeviceRequirement.Any && eligible.Any(s => s.Capabilities.HasGpu))
        {
            eligible.RemoveAll(s => !s.Capabilities.HasGpu);
        }

        var avoid = new HashSet<string>(placement.AvoidSilos, StringComparer.Ordinal);
        var spread = eligible.Where(s => !avoid.Contains(s.Silo)).ToList();
        if (spread.Count > 0)
        {
            eligible = spread;
        }

        var least = eligible.Min(s => s.Load);
        var tied = eligible.Where(s => s.Load == least).Select(s => s.Silo).Order(StringComparer.Ordinal).ToArray();
        return new PlacementDecision(tied[(int)(StableHash(grainKey) % (uint)tied.Length)], null);
    }

    /// <summary>Why no silo can take the replica, or null when one can.</summary>
    public static string? UnschedulableReason(IReadOnlyList<SiloCapabilities> silos, ReplicaPlacement placement)
    {
        if (silos.Any(s => Meets(s, placement)))
        {
            return null;
        }

        if (silos.Count == 0 && placement.Device != DeviceRequirement.Gpu)
        {
            return "no active silos";
        }

        var need = placement.MinGpuMemoryBytes > 0
            ? $"a GPU silo with ≥ {placement.MinGpuMemoryBytes / (1024 * 1024)} MiB of GPU memory"
            : "a GPU silo";
        var have = silos.Count == 0 ? "no active silos" : string.Join(", ", silos.Select(s => s.Describe()));
        return $"needs {need}; the cluster has none: {have}";
    }

    public static bool Meets(SiloCapabilities silo, ReplicaPlacement placement) => placement.Device switch
    {
        DeviceRequirement.Gpu => silo.HasGpu && silo.GpuMemoryBytes >= placement.MinGpuMemoryBytes,
        _ => true,
    };

    /// <summary>FNV-1a over the key's UTF-16 code units: the same on every silo and every run (unlike string.GetHashCode).</summary>
    public static uint StableHash(string key)
    {
        var hash = 2166136261u;
        foreach (var c in key)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash;
    }
}

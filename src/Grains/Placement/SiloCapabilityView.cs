using Carml.Orleans.Grains.Agents;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Carml.Orleans.Grains.Placement;

/// <summary>
/// The capabilities of the cluster's silos as this silo knows them: its own from the <see cref="HardwareDetector"/>
/// (configuration overrides included), the others' from Orleans' silo metadata cache. Without <c>UseSiloMetadata</c>
/// (a bare test silo) other silos count as CPU silos.
/// </summary>
public sealed class SiloCapabilityView(ILocalSiloDetails local, HardwareDetector detector, IClusterMembershipService membership, IServiceProvider services)
{
    private readonly ISiloMetadataCache? _metadata = services.GetService<ISiloMetadataCache>();
    private SiloCapabilities? _own;

    public SiloCapabilities For(SiloAddress silo)
    {
        var name = silo.ToString();
        if (silo.Equals(local.SiloAddress))
        {
            return _own ??= SiloCapabilities.From(name, detector.Gpus);
        }

        return _metadata?.GetSiloMetadata(silo) is { } metadata
            ? SiloCapabilities.FromMetadata(name, metadata.Metadata)
            : SiloCapabilities.Cpu(name);
    }

    /// <summary>The active silos with their capabilities, ordered by address (at least this one, which is running).</summary>
    public IReadOnlyList<SiloCapabilities> ActiveSilos()
    {
        var active = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active)
            .Select(m => For(m.SiloAddress))
            .OrderBy(s => s.Silo, StringComparer.Ordinal)
            .ToArray();
        return active.Length > 0 ? active : [For(local.SiloAddress)];
    }
}

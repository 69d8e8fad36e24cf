using System.Collections.Concurrent;
using System.Diagnostics;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Logging;
using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace Carml.Orleans.Grains.Placement;

/// <summary>Places model replicas on silos that meet their manifest's <c>deployment</c> needs (see <see cref="ReplicaPlacementPolicy"/>).</summary>
[GenerateSerializer]
[Alias("carml.GpuAwarePlacement")]
public sealed class GpuAwarePlacement : PlacementStrategy
{
    internal static readonly GpuAwarePlacement Instance = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class GpuAwarePlacementAttribute() : PlacementAttribute(GpuAwarePlacement.Instance);

/// <summary>
/// Chooses the silo for a new replica activation from the <see cref="ReplicaPlacement"/> its caller put in the request
/// context (none = device <c>any</c>). Throws <see cref="ModelException"/> Unavailable with the reason when no silo is
/// eligible, so the call fails at once instead of waiting.
/// </summary>
public sealed partial class GpuAwarePlacementDirector(SiloCapabilityView capabilities, SiloLoadView loads, ILogger<GpuAwarePlacementDirector> logger)
    : IPlacementDirector
{
    /// <summary>How long this director remembers where it put a version's replicas, to spread a burst of loads.</summary>
    private static readonly TimeSpan SiblingMemory = TimeSpan.FromMinutes(1);

    /// <summary>Version key (<c>name/version</c>) → replica key → (silo, when): the placements made here recently.</summary>
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, (string Silo, long At)>> _recent = new(StringComparer.Ordinal);

    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var placement = ReplicaPlacement.FromContext(target.RequestContextData) ?? new ReplicaPlacement();
        var silos = context.GetCompatibleSilos(target);
        var candidates = silos.Select(s => new PlacementCandidate(capabilities.For(s), loads.LoadOf(s.ToString()))).ToArray();
        var key = target.GrainIdentity.Key.ToString() ?? string.Empty;

        // Replicas loaded together (registration, scaling, a model grain bringing its set back) are placed before any of
        // them reports where it runs: also spread away from where this director just put the version's other replicas.
        var version = key.LastIndexOf('/') is > 0 and var slash ? key[..slash] : key;
        var siblings = _recent.GetOrAdd(version, _ => new(StringComparer.Ordinal));
        var recent = siblings.Where(s => s.Key != key && Stopwatch.GetElapsedTime(s.Value.At) < SiblingMemory).Select(s => s.Value.Silo);
        placement = placement with { AvoidSilos = [.. placement.AvoidSilos.Union(recent, StringComparer.Ordinal)] };

        var decision = ReplicaPlacementPolicy.Choose(candidates, placement, key);
        if (decision.Silo is not { } chosen)
        {
            LogUnschedulable(logger, key, decision.UnschedulableReason!);
            throw new ModelException(ModelErrorKind.Unavailable, $"Replica {key} cannot be placed: {decision.UnschedulableReason}");
        }

        loads.RecordPlacement(chosen);
        siblings[key] = (chosen, Stopwatch.GetTimestamp());
        LogPlaced(logger, key, chosen, placement.Device);
        return Task.FromResult(silos.First(s => s.ToString() == chosen));
    }

    [LoggerMessage(EventId = 1601, Level = LogLevel.Information, Message = "Placed replica {Replica} on silo {Silo} (device {Device})")]
    private static partial void LogPlaced(ILogger logger, string replica, string silo, DeviceRequirement device);

    [LoggerMessage(EventId = 1602, Level = LogLevel.Warning, Message = "Replica {Replica} is unschedulable: {Reason}")]
    private static partial void LogUnschedulable(ILogger logger, string replica, string reason);
}

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
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var placement = ReplicaPlacement.FromContext(target.RequestContextData) ?? new ReplicaPlacement();
        var silos = context.GetCompatibleSilos(target);
        var candidates = silos.Select(s => new PlacementCandidate(capabilities.For(s), loads.LoadOf(s.ToString()))).ToArray();
        var key = target.GrainIdentity.Key.ToString() ?? string.Empty;
        var decision = ReplicaPlacementPolicy.Choose(candidates, placement, key);
        if (decision.Silo is not { } chosen)
        {
            LogUnschedulable(logger, key, decision.UnschedulableReason!);
            throw new ModelException(ModelErrorKind.Unavailable, $"Replica {key} cannot be placed: {decision.UnschedulableReason}");
        }

        loads.RecordPlacement(chosen);
        LogPlaced(logger, key, chosen, placement.Device);
        return Task.FromResult(silos.First(s => s.ToString() == chosen));
    }

    [LoggerMessage(EventId = 1601, Level = LogLevel.Information, Message = "Placed replica {Replica} on silo {Silo} (device {Device})")]
    private static partial void LogPlaced(ILogger logger, string replica, string silo, DeviceRequirement device);

    [LoggerMessage(EventId = 1602, Level = LogLevel.Warning, Message = "Replica {Replica} is unschedulable: {Reason}")]
    private static partial void LogUnschedulable(ILogger logger, string replica, string reason);
}

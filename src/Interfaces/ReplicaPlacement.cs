namespace Carml.Orleans.Interfaces;

/// <summary>
/// What a model replica needs from the silo it is activated on, carried in Orleans' <see cref="RequestContext"/> by
/// whoever calls the replica (the model grain loading it, the gateway routing to it). The placement director reads it
/// when the call has to create the activation; a call to an existing activation ignores it.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("carml.ReplicaPlacement")]
public sealed record ReplicaPlacement
{
    /// <summary>The <see cref="RequestContext"/> key the placement travels under.</summary>
    public const string ContextKey = "carml.placement";

    [Id(0)] public DeviceRequirement Device { get; init; } = DeviceRequirement.Any;

    [Id(1)] public long MinGpuMemoryBytes { get; init; }

    /// <summary>Silos (as <c>SiloAddress.ToString()</c>) already holding a replica of the same version: spread away from them when possible.</summary>
    [Id(2)] public IReadOnlyList<string> AvoidSilos { get; init; } = [];

    public static ReplicaPlacement For(ModelManifest manifest, IReadOnlyList<string>? avoidSilos = null) => new()
    {
        Device = manifest.Deployment?.Device ?? DeviceRequirement.Any,
        MinGpuMemoryBytes = manifest.Deployment?.MinGpuMemoryBytes ?? 0,
        AvoidSilos = avoidSilos ?? [],
    };

    /// <summary>Attaches this placement to the calls the current async flow makes next.</summary>
    public void Apply() => RequestContext.Set(ContextKey, this);

    /// <summary>The placement a call carries, or null when its caller attached none.</summary>
    public static ReplicaPlacement? FromContext(IReadOnlyDictionary<string, object>? requestContext) =>
        requestContext is not null && requestContext.TryGetValue(ContextKey, out var value) ? value as ReplicaPlacement : null;
}

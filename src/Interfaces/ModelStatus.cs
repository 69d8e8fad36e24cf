namespace Carml.Orleans.Interfaces;

/// <summary>Lifecycle of a registered model version.</summary>
[GenerateSerializer]
[Alias("carml.ModelState")]
public enum ModelState
{
    Registered = 0,
    Loading = 1,
    Ready = 2,
    Failed = 3,

    /// <summary>No silo in the cluster meets the manifest's <c>deployment</c> requirement (e.g. it needs a GPU and none is up).</summary>
    Unschedulable = 4,
}

/// <summary>The model file a version is served from, in the content-addressed store.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ModelArtifact")]
public sealed record ModelArtifact([property: Id(0)] string Sha256, [property: Id(1)] long SizeBytes);

/// <summary>What a model version is and how it is doing.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ModelStatus")]
public sealed record ModelStatus
{
    [Id(0)] public required ModelManifest Manifest { get; init; }
    [Id(1)] public required ModelArtifact Artifact { get; init; }
    [Id(2)] public ModelState State { get; init; }
    [Id(3)] public string? Reason { get; init; }
    [Id(4)] public DateTimeOffset RegisteredAt { get; init; }
    [Id(5)] public DateTimeOffset? ReadyAt { get; init; }
    [Id(6)] public string? ExecutionProvider { get; init; }

    /// <summary>
    /// How many replicas serve the version: keys <c>name/version/0</c> … <c>name/version/{ReplicaCount-1}</c>
    /// (<see cref="ModelId.ReplicaKey"/>). The manifest's <c>deployment.replicas</c> unless scaled through the API.
    /// </summary>
    [Id(7)] public int ReplicaCount { get; init; } = 1;

    /// <summary>Where each replica runs and how it is doing, as last reported to the model grain.</summary>
    [Id(8)] public IReadOnlyList<ReplicaStatus> Replicas { get; init; } = [];
}

/// <summary>One replica of a model version: the silo it was placed on, what it runs on, its state.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ReplicaStatus")]
public sealed record ReplicaStatus
{
    [Id(0)] public int Index { get; init; }
    [Id(1)] public ModelState State { get; init; }
    [Id(2)] public string? SiloAddress { get; init; }
    [Id(3)] public string? ExecutionProvider { get; init; }
    [Id(4)] public string? Reason { get; init; }
}

/// <summary>A model name with its registered versions, oldest first.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ModelVersions")]
public sealed record ModelVersions([property: Id(0)] string Name, [property: Id(1)] IReadOnlyList<string> Versions)
{
    public string Latest => Versions[^1];
}

/// <summary>One page of the model catalog, ordered by name; <see cref="NextPageToken"/> is null on the last page.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ModelCatalogPage")]
public sealed record ModelCatalogPage(
    [property: Id(0)] IReadOnlyList<ModelVersions> Models,
    [property: Id(1)] string? NextPageToken);

using Orleans.Concurrency;

namespace Carml.Orleans.Interfaces;

/// <summary>One registered model version: its manifest, artifact and lifecycle. Key: <c>name/version</c>.</summary>
[Alias("carml.IModelGrain")]
public interface IModelGrain : IGrainWithStringKey
{
    /// <summary>
    /// Registers the version and loads it. Throws <see cref="ModelException"/> (InvalidArgument) with every problem when
    /// the model file disagrees with the manifest, in which case nothing is recorded; AlreadyExists when a different
    /// model holds the name and version. Registering the same manifest and artifact again is a no-op.
    /// </summary>
    [Alias("Register")]
    Task<ModelStatus> RegisterAsync(ModelManifest manifest, ModelArtifact artifact);

    /// <summary>
    /// The status, or null when the version is not registered. Interleaved (it only reads), so routing and readiness
    /// checks are never queued behind a turn that waits on replica loads (registration, scaling, failover reloads).
    /// </summary>
    [Alias("GetStatus"), AlwaysInterleave]
    Task<ModelStatus?> GetStatusAsync();

    /// <summary>Loads the model if it is registered but not loaded (after a restart). Returns the new status.</summary>
    [Alias("EnsureLoaded")]
    Task<ModelStatus> EnsureLoadedAsync();

    /// <summary>Unloads and forgets the version. Returns false when it was not registered.</summary>
    [Alias("Delete")]
    Task<bool> DeleteAsync();

    /// <summary>
    /// The registration a replica loads itself from when a request activates it (after its silo died or it was evicted):
    /// manifest, artifact and the replica count, or null when the version is not registered. Read-only and interleaved,
    /// so a replica asking while this grain waits on a replica's load never deadlocks.
    /// </summary>
    [Alias("GetRegistration"), AlwaysInterleave]
    Task<ModelRegistration?> GetRegistrationAsync();

    /// <summary>
    /// Sets how many replicas serve the version (persisted; overrides the manifest's <c>deployment.replicas</c>), loading
    /// the new ones and unloading the extra ones. InvalidArgument outside 1..64; NotFound when not registered.
    /// </summary>
    [Alias("Scale")]
    Task<ModelStatus> ScaleAsync(int replicas);

    /// <summary>A replica reports that it loaded itself (a request activated it), so the status shows where it runs.</summary>
    [Alias("ReplicaLoaded"), OneWay]
    Task ReplicaLoadedAsync(int index, ReplicaInfo info);

    /// <summary>
    /// A replica reports that it was unloaded without the model grain asking (evicted for memory, collected while idle);
    /// it reloads on demand. <paramref name="loadId"/> is the <see cref="ReplicaInfo.LoadId"/> of the load that went, so a
    /// late report about an earlier activation does not hide a newer load.
    /// </summary>
    [Alias("ReplicaUnloaded"), OneWay]
    Task ReplicaUnloadedAsync(int index, string loadId, string reason);
}

/// <summary>What a replica needs to load itself: the registered manifest and file, and how many replicas there are.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ModelRegistration")]
public sealed record ModelRegistration(
    [property: Id(0)] ModelManifest Manifest,
    [property: Id(1)] ModelArtifact Artifact,
    [property: Id(2)] int ReplicaCount);

/// <summary>A loaded inference session of one model version. Key: <c>name/version/replica</c>. Not persistent.</summary>
[Alias("carml.IModelReplicaGrain")]
public interface IModelReplicaGrain : IGrainWithStringKey
{
    /// <summary>Loads the session (idempotent). Throws InvalidArgument listing every mismatch between file and manifest.</summary>
    [Alias("Load")]
    Task<ReplicaInfo> LoadAsync(ModelManifest manifest, ModelArtifact artifact);

    /// <summary>
    /// Queues the request for the model's dynamic batcher and answers its slice of the batch's outputs. Cancelling the
    /// token takes a queued request out before it reaches the runtime. Throws ResourceExhausted when the queue is full and
    /// DeadlineExceeded when the request waited past its timeout.
    /// </summary>
    [Alias("Infer")]
    Task<InferenceResponse> InferAsync(InferenceRequest request, CancellationToken cancellationToken = default);

    /// <summary>What the replica's queue and runtime have done since it loaded.</summary>
    [Alias("GetStatistics")]
    Task<ReplicaStatistics> GetStatisticsAsync();

    [Alias("Unload")]
    Task UnloadAsync();

    /// <summary>
    /// Unloads the replica because the silo's memory budget needs the room (its memory is already released there) and
    /// tells the model grain; the next request re-activates and reloads it. Only the load the budget chose
    /// (<paramref name="loadId"/>, <see cref="ReplicaInfo.LoadId"/>) is evicted, never a newer one.
    /// </summary>
    [Alias("Evict")]
    Task EvictAsync(string loadId);
}

/// <summary>What a loaded replica runs on.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ReplicaInfo")]
public sealed record ReplicaInfo(
    [property: Id(0)] string ExecutionProvider,
    [property: Id(1)] string SiloAddress,
    [property: Id(2)] TimeSpan LoadTime)
{
    /// <summary>The memory the silo's budget charges for this replica (estimate, see docs/gpu.md).</summary>
    [Id(3)] public long MemoryBytes { get; init; }

    /// <summary>Identifies this load of the replica (a new one per session loaded).</summary>
    [Id(4)] public string LoadId { get; init; } = string.Empty;
}

/// <summary>Counters of one replica's batcher since its session loaded.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ReplicaStatistics")]
public sealed record ReplicaStatistics(
    [property: Id(0)] long Requests,
    [property: Id(1)] long Batches,
    [property: Id(2)] long BatchedRequests,
    [property: Id(3)] long BatchedRows,
    [property: Id(4)] int MaxBatchRows,
    [property: Id(5)] long Rejected,
    [property: Id(6)] long Expired,
    [property: Id(7)] long Cancelled,
    [property: Id(8)] int Queued,
    [property: Id(9)] int Running);

/// <summary>The index of registered model names and versions, so listing never scans grains. Key: <c>default</c>.</summary>
[Alias("carml.IModelCatalogGrain")]
public interface IModelCatalogGrain : IGrainWithStringKey
{
    public const string DefaultKey = "default";

    [Alias("Add")]
    Task AddAsync(ModelId model);

    [Alias("Remove")]
    Task RemoveAsync(ModelId model);

    /// <summary>The versions of a name, oldest first (empty when unknown).</summary>
    [Alias("GetVersions")]
    Task<IReadOnlyList<string>> GetVersionsAsync(string name);

    /// <summary>Models ordered by name, starting after the page token's name.</summary>
    [Alias("List")]
    Task<ModelCatalogPage> ListAsync(string? pageToken, int pageSize);
}

public static class ModelCatalogExtensions
{
    /// <summary>Every registered version, page by page from the catalog (never a scan of model grains).</summary>
    public static async IAsyncEnumerable<ModelId> AllVersionsAsync(this IModelCatalogGrain catalog, int pageSize = 100)
    {
        string? token = null;
        do
        {
            var page = await catalog.ListAsync(token, pageSize);
            foreach (var model in page.Models)
            {
                foreach (var version in model.Versions)
                {
                    yield return new ModelId(model.Name, version);
                }
            }

            token = page.NextPageToken;
        }
        while (token is not null);
    }
}

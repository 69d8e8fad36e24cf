using Carml.Orleans.Core;
using Carml.Orleans.Grains.Placement;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Grains;

[GenerateSerializer]
[Alias("carml.ModelGrainState")]
public sealed class ModelGrainState
{
    [Id(0)] public ModelManifest? Manifest { get; set; }
    [Id(1)] public ModelArtifact? Artifact { get; set; }
    [Id(2)] public DateTimeOffset RegisteredAt { get; set; }

    /// <summary>The replica count set through the API; null = the manifest's <c>deployment.replicas</c>.</summary>
    [Id(3)] public int? Replicas { get; set; }
}

/// <summary>
/// Coordinates one model version: records the registration, drives its replica set (keys <c>name/version/0..N-1</c>)
/// through loading, and reports the lifecycle. Replicas load in parallel, each placed by the GPU-aware director with the
/// manifest's device needs and the silos of the other replicas to spread away from. The version is Ready while at least
/// one replica serves (or can reload on demand); the status names the rest. When no silo can take a replica (it needs a
/// GPU and none is up) the replica is Unschedulable with the reason, and a timer retries while the grain is active.
/// The registration is persisted only after a replica has loaded the file and it matched the manifest.
/// </summary>
/// <remarks>
/// Always active, so the replica set's status lives as long as the silo; when the grain activates again (a restart, or
/// its silo failed) it brings the replica set back at once instead of waiting for requests.
/// </remarks>
[CollectionAgeLimit(AlwaysActive = true)]
public sealed partial class ModelGrain(
    [PersistentState("model", StorageNames.Models)] IPersistentState<ModelGrainState> registration,
    SiloCapabilityView silos,
    IOptions<PlacementOptions> placementOptions,
    ILogger<ModelGrain> logger) : Grain, IModelGrain
{
    private ReplicaStatus[] _replicas = [];
    private DateTimeOffset? _readyAt;
    private bool _deleting;
    private IGrainTimer? _retry;
    private IGrainTimer? _activationLoad;

    /// <summary>Replicas whose last load failed for a passing reason (Unavailable: a silo leaving, a stale activation): the timer retries them.</summary>
    private readonly HashSet<int> _transient = [];

    /// <summary>The load each ready replica reported, so a late "unloaded" from an earlier activation is ignored.</summary>
    private readonly Dictionary<int, string> _loads = [];

    private ModelId Id => ModelId.Parse(this.GetPrimaryKeyString());

    private int ReplicaCount => registration.State.Replicas ?? registration.State.Manifest?.Deployment?.Replicas ?? 1;

    private IModelReplicaGrain Replica(int index) => GrainFactory.GetGrain<IModelReplicaGrain>(Id.ReplicaKey(index));

    public async Task<ModelStatus> RegisterAsync(ModelManifest manifest, ModelArtifact artifact)
    {
        if (manifest.Id != Id)
        {
            throw ModelException.InvalidArgument($"The manifest names {manifest.Id}, but this is {Id}.");
        }

        var problems = ManifestValidator.Validate(manifest);
        if (problems.Count > 0)
        {
            throw ManifestReader.Invalid(problems);
        }

        if (registration.State.Manifest is { } existing)
        {
            if (registration.State.Artifact == artifact && ManifestComparer.Equivalent(existing, manifest))
            {
                return await EnsureLoadedAsync();
            }

            throw new ModelException(
                ModelErrorKind.AlreadyExists,
                $"Model '{manifest.Name}' version '{manifest.Version}' is already registered with a different manifest or file; delete it first or register a new version.");
        }

        var count = manifest.Deployment?.Replicas ?? 1;
        _replicas = Enumerable.Range(0, count).Select(i => new ReplicaStatus { Index = i, State = ModelState.Loading }).ToArray();
        if (MarkUnschedulableIfNoSilo(manifest, Enumerable.Range(0, count)))
        {
            // Nothing can load it yet: keep the registration and say why; a GPU silo joining later picks it up.
            await RecordAsync(manifest, artifact);
            return Status()!;
        }

        var failures = await LoadReplicasAsync(manifest, artifact, Enumerable.Range(0, count));
        var rejection = failures.FirstOrDefault(f => f is ModelException { Kind: ModelErrorKind.InvalidArgument })
            ?? (failures.Count == count && _replicas.Any(r => r.State != ModelState.Unschedulable) ? failures[0] : null);
        if (rejection is not null)
        {
            // The file disagrees with the manifest (or nothing loaded at all): nothing is recorded.
            await Task.WhenAll(Enumerable.Range(0, count).Select(i => Replica(i).UnloadAsync()));
            _replicas = [];
            LogRejected(logger, Id.Key, rejection.Message);
            throw rejection;
        }

        await RecordAsync(manifest, artifact);
        LogRegistered(logger, Id.Key, artifact.Sha256, count - failures.Count, count, Status()!.ExecutionProvider ?? "none");
        StartRetryIfUnschedulable();
        return Status()!;
    }

    public Task<ModelStatus?> GetStatusAsync() => Task.FromResult(Status());

    public async Task<ModelStatus> EnsureLoadedAsync()
    {
        var (manifest, artifact) = Registration();

        // Ask every replica even when this grain is Ready: in a cluster a replica may have been lost with the silo that
        // hosted it and re-activated empty on another one. Loading is idempotent, so a loaded replica just answers.
        Resize();
        await LoadOrMarkUnschedulableAsync(manifest, artifact, Enumerable.Range(0, _replicas.Length));
        return Status()!;
    }

    public Task<ModelRegistration?> GetRegistrationAsync() => Task.FromResult(
        !_deleting && registration.State is { Manifest: { } manifest, Artifact: { } artifact }
            ? new ModelRegistration(manifest, artifact, ReplicaCount)
            : null);

    public async Task<ModelStatus> ScaleAsync(int replicas)
    {
        var (manifest, artifact) = Registration();
        if (replicas is < 1 or > ManifestValidator.MaxReplicas)
        {
            throw ModelException.InvalidArgument($"replicas must be between 1 and {ManifestValidator.MaxReplicas}, got {replicas}.");
        }

        var before = ReplicaCount;
        registration.State.Replicas = replicas;
        await registration.WriteStateAsync();
        Resize();
        LogScaled(logger, Id.Key, before, replicas);
        if (replicas < before)
        {
            await Task.WhenAll(Enumerable.Range(replicas, before - replicas).Select(i => Replica(i).UnloadAsync()));
            _loads.Keys.Where(i => i >= replicas).ToList().ForEach(i => _loads.Remove(i));
        }
        else if (replicas > before)
        {
            await LoadOrMarkUnschedulableAsync(manifest, artifact, Enumerable.Range(before, replicas - before));
        }

        return Status()!;
    }

    public Task ReplicaLoadedAsync(int index, ReplicaInfo info)
    {
        if (registration.State.Manifest is not null && index < ReplicaCount)
        {
            Resize();
            _replicas[index] = Ready(index, info);
            _loads[index] = info.LoadId;
            MarkReadyIfServing();
        }

        return Task.CompletedTask;
    }

    public Task ReplicaUnloadedAsync(int index, string loadId, string reason)
    {
        if (registration.State.Manifest is not null && index < ReplicaCount && (!_loads.TryGetValue(index, out var current) || current == loadId))
        {
            _loads.Remove(index);
            Resize();
            _replicas[index] = new ReplicaStatus { Index = index, State = ModelState.Registered, Reason = reason };
        }

        return Task.CompletedTask;
    }

    public async Task<bool> DeleteAsync()
    {
        if (registration.State.Manifest is null)
        {
            return false;
        }

        StopRetry();

        // From here on a replica that a late request activates finds no registration to load (NOT_FOUND), so a
        // deleted version cannot come back while its replicas are being unloaded.
        _deleting = true;
        try
        {
            await Task.WhenAll(Enumerable.Range(0, Math.Max(ReplicaCount, _replicas.Length)).Select(i => Replica(i).UnloadAsync()));
            await GrainFactory.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).RemoveAsync(Id);
            await registration.ClearStateAsync();
        }
        finally
        {
            _deleting = false;
        }

        registration.State = new ModelGrainState();
        _replicas = [];
        _loads.Clear();
        _readyAt = null;
        LogDeleted(logger, Id.Key);
        DeactivateOnIdle();
        return true;
    }

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (registration.State.Manifest is not null)
        {
            // A one-shot turn of its own, after activation, so the load never delays the call that activated the grain.
            _activationLoad = this.RegisterGrainTimer(LoadAfterActivationAsync, new GrainTimerCreationOptions(TimeSpan.Zero, Timeout.InfiniteTimeSpan));
        }

        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        StopRetry();
        _activationLoad?.Dispose();
        return Task.CompletedTask;
    }

    private async Task LoadAfterActivationAsync(CancellationToken cancellationToken)
    {
        _activationLoad?.Dispose();
        _activationLoad = null;
        if (registration.State is not { Manifest: { } manifest, Artifact: { } artifact })
        {
            return;
        }

        // Whatever is not loaded or loading yet: the replicas a call before this turn did not load, including those that
        // reported their unloading to the previous activation (a silo shutting down) and reached this one.
        Resize();
        var idle = _replicas.Where(r => r.State == ModelState.Registered).Select(r => r.Index).ToArray();
        if (idle.Length > 0)
        {
            await LoadOrMarkUnschedulableAsync(manifest, artifact, idle);
        }
    }

    private async Task RecordAsync(ModelManifest manifest, ModelArtifact artifact)
    {
        registration.State.Manifest = manifest;
        registration.State.Artifact = artifact;
        registration.State.RegisteredAt = DateTimeOffset.UtcNow;
        await registration.WriteStateAsync();
        await GrainFactory.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).AddAsync(Id);
    }

    /// <summary>Loads the replicas, or marks them unschedulable when no silo can take them (and keeps retrying).</summary>
    private async Task LoadOrMarkUnschedulableAsync(ModelManifest manifest, ModelArtifact artifact, IEnumerable<int> indices)
    {
        var wanted = indices.ToArray();
        if (MarkUnschedulableIfNoSilo(manifest, wanted))
        {
            return;
        }

        foreach (var i in wanted.Where(i => _replicas[i].State != ModelState.Ready))
        {
            _replicas[i] = _replicas[i] with { State = ModelState.Loading };
        }

        await LoadReplicasAsync(manifest, artifact, wanted);
        StartRetryIfUnschedulable();
    }

    /// <summary>
    /// When no active silo can take the model, marks the given replicas that are not ready as unschedulable with the
    /// reason, and starts the retry timer; false when some silo qualifies.
    /// </summary>
    private bool MarkUnschedulableIfNoSilo(ModelManifest manifest, IEnumerable<int> indices)
    {
        if (ReplicaPlacementPolicy.UnschedulableReason(silos.ActiveSilos(), ReplicaPlacement.For(manifest)) is not { } reason)
        {
            return false;
        }

        foreach (var i in indices.Where(i => _replicas[i].State != ModelState.Ready))
        {
            _replicas[i] = Unschedulable(i, reason);
        }

        LogUnschedulable(logger, Id.Key, reason);
        StartRetry();
        return true;
    }

    /// <summary>Loads the replicas in parallel, recording each one's status; returns the failures.</summary>
    private async Task<IReadOnlyList<Exception>> LoadReplicasAsync(ModelManifest manifest, ModelArtifact artifact, IEnumerable<int> indices)
    {
        var results = await Task.WhenAll(indices.Select(i => LoadReplicaAsync(manifest, artifact, i)));
        MarkReadyIfServing();
        return results.OfType<Exception>().ToArray();
    }

    private async Task<Exception?> LoadReplicaAsync(ModelManifest manifest, ModelArtifact artifact, int index)
    {
        // Spread away from the silos the other replicas are known to run on; the director also counts the placements
        // it just made, so replicas placed in this same burst spread too.
        var others = _replicas
            .Where(r => r.Index != index && r.SiloAddress is not null && r.State == ModelState.Ready)
            .Select(r => r.SiloAddress!)
            .Distinct()
            .ToArray();
        ReplicaPlacement.For(manifest, others).Apply();
        try
        {
            _transient.Remove(index);
            var info = await Replica(index).LoadAsync(manifest, artifact);
            _replicas[index] = Ready(index, info);
            _loads[index] = info.LoadId;
            return null;
        }
        catch (Exception e)
        {
            // A placement that failed because no silo qualifies (e.g. the GPU silo left a moment ago) is unschedulable;
            // anything else (file lost, out of memory, runtime error) is a failure of this replica.
            var unschedulable = ReplicaPlacementPolicy.UnschedulableReason(silos.ActiveSilos(), ReplicaPlacement.For(manifest));
            _replicas[index] = unschedulable is not null
                ? Unschedulable(index, unschedulable)
                : new ReplicaStatus { Index = index, State = ModelState.Failed, Reason = e.Message };
            if (unschedulable is null && e is ModelException { Kind: ModelErrorKind.Unavailable } or SiloUnavailableException or OrleansMessageRejectionException)
            {
                _transient.Add(index);
            }

            LogReplicaFailed(logger, Id.ReplicaKey(index), e);
            return e;
        }
        finally
        {
            RequestContext.Remove(ReplicaPlacement.ContextKey);
        }
    }

    private bool NeedsRetry(ReplicaStatus replica) =>
        replica.State == ModelState.Unschedulable || (replica.State == ModelState.Failed && _transient.Contains(replica.Index));

    private void StartRetryIfUnschedulable()
    {
        if (_replicas.Any(NeedsRetry))
        {
            StartRetry();
        }
    }

    /// <summary>While replicas are unschedulable (or failed for a passing reason), a timer tries them again every <see cref="PlacementOptions.UnschedulableRetryInterval"/>.</summary>
    private void StartRetry()
    {
        if (_retry is not null)
        {
            return;
        }

        var interval = placementOptions.Value.UnschedulableRetryInterval;
        _retry = this.RegisterGrainTimer(RetryUnschedulableAsync, new GrainTimerCreationOptions(interval, interval) { KeepAlive = true });
    }

    private void StopRetry()
    {
        _retry?.Dispose();
        _retry = null;
    }

    private async Task RetryUnschedulableAsync(CancellationToken cancellationToken)
    {
        var waiting = _replicas.Where(NeedsRetry).Select(r => r.Index).ToArray();
        if (waiting.Length == 0 || registration.State is not { Manifest: { } manifest, Artifact: { } artifact })
        {
            StopRetry();
            return;
        }

        if (ReplicaPlacementPolicy.UnschedulableReason(silos.ActiveSilos(), ReplicaPlacement.For(manifest)) is not null)
        {
            return;
        }

        LogRetrying(logger, Id.Key, waiting.Length);
        foreach (var i in waiting)
        {
            _replicas[i] = _replicas[i] with { State = ModelState.Loading, Reason = null };
        }

        await LoadReplicasAsync(manifest, artifact, waiting);
        if (!_replicas.Any(NeedsRetry))
        {
            StopRetry();
        }
    }

    /// <summary>Sizes the replica statuses to the replica count, keeping what is known.</summary>
    private void Resize()
    {
        var count = ReplicaCount;
        if (_replicas.Length != count)
        {
            _replicas = Enumerable.Range(0, count)
                .Select(i => i < _replicas.Length ? _replicas[i] : new ReplicaStatus { Index = i, State = ModelState.Registered })
                .ToArray();
        }
    }

    private (ModelManifest Manifest, ModelArtifact Artifact) Registration() =>
        registration.State is { Manifest: { } manifest, Artifact: { } artifact }
            ? (manifest, artifact)
            : throw ModelException.UnknownModel(Id.Name, Id.Version);

    private void MarkReadyIfServing()
    {
        if (_replicas.Any(r => r.State == ModelState.Ready))
        {
            _readyAt ??= DateTimeOffset.UtcNow;
        }
    }

    private static ReplicaStatus Ready(int index, ReplicaInfo info) => new()
    {
        Index = index,
        State = ModelState.Ready,
        SiloAddress = info.SiloAddress,
        ExecutionProvider = info.ExecutionProvider,
    };

    /// <summary>A replica unloaded for memory: Registered with the reason; the next request reloads it.</summary>
    private static bool IsEvicted(ReplicaStatus replica) => replica.State == ModelState.Registered && replica.Reason is not null;

    private static ReplicaStatus Unschedulable(int index, string reason) => new() { Index = index, State = ModelState.Unschedulable, Reason = reason };

    /// <summary>
    /// The version's state from its replicas': Ready when one serves or an evicted one can reload on demand, Loading
    /// while one loads, Unschedulable when none can be placed, Failed otherwise; the reason names every replica that is
    /// not ready.
    /// </summary>
    public static (ModelState State, string? Reason) Summarize(IReadOnlyList<ReplicaStatus> replicas)
    {
        if (replicas.Count == 0)
        {
            return (ModelState.Registered, null);
        }

        var state = replicas.Any(r => r.State == ModelState.Ready || IsEvicted(r)) ? ModelState.Ready
            : replicas.Any(r => r.State == ModelState.Loading) ? ModelState.Loading
            : replicas.All(r => r.State == ModelState.Registered) ? ModelState.Registered
            : replicas.All(r => r.State is ModelState.Unschedulable or ModelState.Registered) ? ModelState.Unschedulable
            : ModelState.Failed;
        var notReady = replicas.Where(r => r.State != ModelState.Ready && r.Reason is not null).ToArray();
        if (notReady.Length == 0)
        {
            return (state, null);
        }

        if (replicas.Count == 1)
        {
            return (state, notReady[0].Reason);
        }

        var ready = replicas.Count(r => r.State == ModelState.Ready);
        return (state, $"{ready} of {replicas.Count} replicas ready; " + string.Join("; ", notReady.Select(r => $"replica {r.Index} {r.State.ToString().ToLowerInvariant()}: {r.Reason}")));
    }

    private ModelStatus? Status()
    {
        if (registration.State is not { Manifest: { } manifest, Artifact: { } artifact })
        {
            return null;
        }

        var (state, reason) = Summarize(_replicas);
        if (state != ModelState.Unschedulable
            && ReplicaPlacementPolicy.UnschedulableReason(silos.ActiveSilos(), ReplicaPlacement.For(manifest)) is { } gone)
        {
            // The silos it can run on have left since its replicas loaded (a GPU silo died): say so rather than "ready".
            // A request, or the next load, places the replicas again once a suitable silo is back.
            (state, reason) = (ModelState.Unschedulable, gone);
        }

        return new ModelStatus
        {
            Manifest = manifest,
            Artifact = artifact,
            State = state,
            Reason = reason,
            RegisteredAt = registration.State.RegisteredAt,
            ReadyAt = state == ModelState.Ready ? _readyAt : null,
            ExecutionProvider = _replicas.FirstOrDefault(r => r.State == ModelState.Ready)?.ExecutionProvider,
            ReplicaCount = ReplicaCount,
            Replicas = _replicas,
        };
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Registered model {Model} (sha256 {Sha256}): {Loaded} of {Replicas} replicas loaded, on {Provider}")]
    private static partial void LogRegistered(ILogger logger, string model, string sha256, int loaded, int replicas, string provider);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Rejected registration of model {Model}: {Reason}")]
    private static partial void LogRejected(ILogger logger, string model, string reason);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "Replica {Replica} failed to load")]
    private static partial void LogReplicaFailed(ILogger logger, string replica, Exception exception);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Deleted model {Model}")]
    private static partial void LogDeleted(ILogger logger, string model);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Model {Model} is unschedulable: {Reason}")]
    private static partial void LogUnschedulable(ILogger logger, string model, string reason);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "Model {Model}: an eligible silo is up, loading {Count} unschedulable replicas")]
    private static partial void LogRetrying(ILogger logger, string model, int count);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Information, Message = "Model {Model} scaled from {Before} to {After} replicas")]
    private static partial void LogScaled(ILogger logger, string model, int before, int after);
}

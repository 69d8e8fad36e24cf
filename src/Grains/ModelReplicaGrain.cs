using System.Diagnostics;
using System.Globalization;
using Carml.Orleans.Core;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Grains.Agents;
using Carml.Orleans.Grains.Placement;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;
using Orleans.Concurrency;

namespace Carml.Orleans.Grains;

/// <summary>
/// Holds the loaded ONNX Runtime session of one model version and its dynamic batcher (a <see cref="LocalReplica"/>).
/// Reentrant: the grain's own bookkeeping runs on its single-threaded turn; requests wait in the batcher's queue (where
/// a deadline or the caller's cancellation takes them out) and batches run on the thread pool, or inline when the
/// model's runs are shorter than a thread hop. The replica is published in the silo's <see cref="LocalReplicaDirectory"/>
/// so a gateway in the same process reaches it without an Orleans message. A session is disposed only after the
/// requests using it have finished.
/// </summary>
/// <remarks>
/// Placed by <see cref="GpuAwarePlacementDirector"/> on a silo that meets the manifest's <c>deployment</c>. A request
/// that activates an unloaded replica (its silo died, or it was evicted for memory) loads it from the model grain's
/// registration (an interleaved read, so no cycle with a model grain that is loading replicas) and reports back.
/// Every loaded session is charged to the silo's <see cref="ModelMemoryBudget"/>.
/// </remarks>
[Reentrant]
[GpuAwarePlacement]
public sealed partial class ModelReplicaGrain(
    ContentStore contentStore,
    IOptions<OnnxRuntimeOptions> runtimeOptions,
    IOptions<ModelMemoryOptions> memoryOptions,
    ModelMemoryBudget budget,
    HardwareDetector hardware,
    LocalReplicaDirectory directory,
    ILocalSiloDetails silo,
    ILogger<ModelReplicaGrain> logger) : Grain, IModelReplicaGrain
{
    private static readonly Lazy<IReadOnlyList<string>> AvailableProviders = new(() => OrtEnv.Instance().GetAvailableProviders());

    private LocalReplica? _loaded;
    private ReplicaResident? _resident;
    private Task<ReplicaInfo>? _loading;
    private bool _unloadRequested;

    private string Key => this.GetPrimaryKeyString();

    private ModelId Id => ModelId.Parse(Key);

    /// <summary>The replica's index: the last segment of <c>name/version/index</c> (0 for a two-part key).</summary>
    private int Index
    {
        get
        {
            var key = Key;
            var slash = key.LastIndexOf('/');
            return slash > key.IndexOf('/') && int.TryParse(key.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var index) ? index : 0;
        }
    }

    public Task<ReplicaInfo> LoadAsync(ModelManifest manifest, ModelArtifact artifact)
    {
        if (_loaded is { IsRetired: false } loaded && loaded.Artifact == artifact)
        {
            return Task.FromResult(loaded.Info);
        }

        if (_loading is { } pending)
        {
            return pending;
        }

        // A load that fails at once (missing file) has already run its cleanup: keeping its task would answer every
        // later load with the same old failure.
        var load = LoadCoreAsync(manifest, artifact);
        if (!load.IsCompleted)
        {
            _loading = load;
        }

        return load;
    }

    public async Task<InferenceResponse> InferAsync(InferenceRequest request, CancellationToken cancellationToken = default)
    {
        var loaded = _loaded is { IsRetired: false } current ? current : await LoadRegisteredAsync();
        loaded.Touch();
        if (!loaded.TryAcquire())
        {
            throw new ModelException(ModelErrorKind.Unavailable, $"Model '{Id.Name}' version '{Id.Version}' is being reloaded; retry.");
        }

        try
        {
            return await loaded.InferAsync(request, cancellationToken);
        }
        finally
        {
            loaded.Release();
        }
    }

    public Task<ReplicaStatistics> GetStatisticsAsync()
    {
        if (_loaded is not { } loaded)
        {
            return Task.FromResult(new ReplicaStatistics(0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
        }

        loaded.Touch();
        var s = loaded.Batcher.GetStatistics();
        return Task.FromResult(new ReplicaStatistics(
            s.Requests, s.Batches, s.BatchedRequests, s.BatchedRows, s.MaxBatchRows, s.Rejected, s.Expired, s.Cancelled, s.Queued, s.Running));
    }

    public Task UnloadAsync()
    {
        if (_loaded is not null)
        {
            LogUnloaded(logger, Key);
        }

        _unloadRequested = true;
        Retire();
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public async Task EvictAsync(string loadId)
    {
        if (_loaded is not { } loaded || loaded.Info.LoadId != loadId)
        {
            // The load the budget chose is gone already (this message may even have activated an empty replica, or a
            // newer load replaced it): nothing to evict, and an empty activation should not linger.
            if (_loaded is null)
            {
                DeactivateOnIdle();
            }

            return;
        }

        LogEvicted(logger, Key, budget.UsedBytes, budget.BudgetBytes);
        _unloadRequested = true;
        Retire();
        DeactivateOnIdle();
        await GrainFactory.GetGrain<IModelGrain>(Id.Key).ReplicaUnloadedAsync(Index, loaded.Info.LoadId, "unloaded to make room for other models (silo memory budget); reloads on the next request");
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        var loaded = _loaded;
        Retire();
        if (loaded is not null && !_unloadRequested)
        {
            // Collected while idle, or the silo is shutting down: the model's status should not claim it is loaded.
            try
            {
                await GrainFactory.GetGrain<IModelGrain>(Id.Key).ReplicaUnloadedAsync(Index, loaded.Info.LoadId, $"unloaded ({reason.ReasonCode}); reloads on the next request");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogReportFailed(logger, Key, e);
            }
        }
    }

    private async Task<LocalReplica> LoadRegisteredAsync()
    {
        // A request activated this replica (first use after a restart, its silo died, or it was evicted): load it from
        // the registration, which the model grain answers even while it is busy loading other replicas.
        var model = GrainFactory.GetGrain<IModelGrain>(Id.Key);
        var registration = await model.GetRegistrationAsync() ?? throw ModelException.UnknownModel(Id.Name, Id.Version);
        if (Index >= registration.ReplicaCount)
        {
            DeactivateOnIdle();
            throw new ModelException(
                ModelErrorKind.Unavailable,
                $"Model '{Id.Name}' version '{Id.Version}' has {registration.ReplicaCount} replicas; replica {Index} is not one of them.");
        }

        ReplicaInfo info;
        try
        {
            info = await LoadAsync(registration.Manifest, registration.Artifact);
        }
        catch (ModelException e) when (e.Kind == ModelErrorKind.InvalidArgument)
        {
            // At registration this meant a bad file; for a registered model (its file lost from this silo's store) it is
            // the server's problem, and another replica may still serve: never answer the caller a client error.
            throw new ModelException(ModelErrorKind.Unavailable, $"Replica {Key} could not load its registered model: {e.Message}");
        }

        await model.ReplicaLoadedAsync(Index, info);
        return _loaded is { IsRetired: false } loaded
            ? loaded
            : throw new ModelException(ModelErrorKind.Unavailable, $"Model '{Id.Name}' version '{Id.Version}' was unloaded while loading; retry.");
    }

    private async Task<ReplicaInfo> LoadCoreAsync(ModelManifest manifest, ModelArtifact artifact)
    {
        var resident = new ReplicaResident(GrainFactory.GetGrain<IModelReplicaGrain>(Key), logger, Key);
        try
        {
            string path;
            try
            {
                path = contentStore.GetPath(artifact.Sha256);
            }
            catch (FileNotFoundException e)
            {
                throw new ModelException(ModelErrorKind.InvalidArgument, e.Message, [$"source.sha256: {e.Message}"]);
            }

            // A caller that attached no placement (or a stale one) may have activated this replica on a silo that cannot
            // run it: refuse, and go, so the next request places it again.
            var own = SiloCapabilities.From(silo.SiloAddress.ToString(), hardware.Gpus);
            if (!ReplicaPlacementPolicy.Meets(own, ReplicaPlacement.For(manifest)))
            {
                DeactivateOnIdle();
                throw new ModelException(
                    ModelErrorKind.Unavailable,
                    $"Replica {Key} cannot run on {own.Describe()}: {ReplicaPlacementPolicy.UnschedulableReason([own], ReplicaPlacement.For(manifest))}");
            }

            var choice = ExecutionProviderSelector.Choose(AvailableProviders.Value, hardware.Gpus.Count, manifest.Deployment?.Device ?? DeviceRequirement.Any);
            if (choice.Warning is { } warning)
            {
                LogProviderFallback(logger, Key, warning);
            }

            // Room first (evicting idle replicas if the budget needs it), so a load never overshoots the budget.
            var memory = memoryOptions.Value.EstimateBytes(artifact.SizeBytes);
            IReadOnlyList<string> evicted;
            try
            {
                evicted = budget.Reserve(Key, memory, resident);
            }
            catch (ModelException e) when (e.Kind == ModelErrorKind.ResourceExhausted)
            {
                LogNoRoom(logger, Key, e.Message);
                throw;
            }

            foreach (var victim in evicted)
            {
                LogEvicting(logger, victim, Key);
            }

            var started = Stopwatch.GetTimestamp();
            OnnxModelSession session;
            try
            {
                session = await Task.Run(() => OnnxModelSession.Open(path, manifest, runtimeOptions.Value, choice.UseCuda));
            }
            catch
            {
                budget.Release(Key, resident);
                throw;
            }

            if (session.ProviderFallback is { } fallback)
            {
                LogProviderFallback(logger, Key, fallback);
            }

            var info = new ReplicaInfo(session.ExecutionProvider, silo.SiloAddress.ToString(), Stopwatch.GetElapsedTime(started)) { MemoryBytes = memory, LoadId = Guid.NewGuid().ToString("N") };
            Retire();
            _loaded = new LocalReplica(manifest, artifact, session, info, runtimeOptions.Value.ConcurrentRunsFor(manifest));
            resident.Replica = _loaded;
            _resident = resident;
            budget.Loaded(); // the agent report shows the provider now, not "loading" until the next heartbeat
            directory.Publish(Key, _loaded);
            CarmlTelemetry.ModelLoadSeconds.Record(info.LoadTime.TotalSeconds, new("model", manifest.Name), new("version", manifest.Version));
            CarmlTelemetry.TrackLoaded(_loaded, manifest.Name, manifest.Version, info.SiloAddress, memory);
            LogLoaded(logger, Key, info.ExecutionProvider, info.LoadTime.TotalMilliseconds, memory, budget.UsedBytes, budget.BudgetBytes);
            return info;
        }
        finally
        {
            _loading = null;
        }
    }

    private void Retire()
    {
        if (_resident is { } resident)
        {
            _resident = null;
            budget.Release(Key, resident);
        }

        if (_loaded is { } loaded)
        {
            _loaded = null;
            directory.Withdraw(Key, loaded);
            CarmlTelemetry.UntrackLoaded(loaded);
            loaded.Retire();
        }
    }

    /// <summary>
    /// The replica as the memory budget sees it. While its session is still loading it counts as busy, so a concurrent
    /// load cannot evict it.
    /// </summary>
    private sealed class ReplicaResident(IModelReplicaGrain self, ILogger logger, string key) : IMemoryResident
    {
        private readonly long _created = Stopwatch.GetTimestamp();

        public LocalReplica? Replica { get; set; }

        public int InFlight => Replica?.InFlight ?? 1;

        public long LastUsed => Replica?.LastUsed ?? _created;

        public string ExecutionProvider => Replica?.Info.ExecutionProvider ?? "loading";

        public void Evict()
        {
            // A message to the replica's own activation: its state changes only on its own turn.
            self.EvictAsync(Replica?.Info.LoadId ?? string.Empty).ContinueWith(
                t => LogEvictFailed(logger, key, t.Exception!),
                CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Replica {Replica} loaded on {Provider} in {LoadMs:F1} ms, charged {MemoryBytes} bytes (silo model memory {UsedBytes} of {BudgetBytes} bytes, 0 = unlimited)")]
    private static partial void LogLoaded(ILogger logger, string replica, string provider, double loadMs, long memoryBytes, long usedBytes, long budgetBytes);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Replica {Replica} unloaded")]
    private static partial void LogUnloaded(ILogger logger, string replica);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Evicting idle replica {Victim} (least recently used) to make room for {Replica}")]
    private static partial void LogEvicting(ILogger logger, string victim, string replica);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Information, Message = "Replica {Replica} evicted for memory (silo model memory {UsedBytes} of {BudgetBytes} bytes); it reloads on demand")]
    private static partial void LogEvicted(ILogger logger, string replica, long usedBytes, long budgetBytes);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "Replica {Replica} cannot load: {Reason}")]
    private static partial void LogNoRoom(ILogger logger, string replica, string reason);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Warning, Message = "Replica {Replica}: {Warning}")]
    private static partial void LogProviderFallback(ILogger logger, string replica, string warning);

    [LoggerMessage(EventId = 1108, Level = LogLevel.Debug, Message = "Replica {Replica} could not tell its model it was unloaded")]
    private static partial void LogReportFailed(ILogger logger, string replica, Exception exception);

    [LoggerMessage(EventId = 1107, Level = LogLevel.Warning, Message = "Evicting replica {Replica} failed")]
    private static partial void LogEvictFailed(ILogger logger, string replica, Exception exception);
}

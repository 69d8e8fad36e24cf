using System.Diagnostics;
using Carml.Orleans.Core;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
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
[Reentrant]
public sealed partial class ModelReplicaGrain(
    ContentStore contentStore,
    IOptions<OnnxRuntimeOptions> runtimeOptions,
    LocalReplicaDirectory directory,
    ILocalSiloDetails silo,
    ILogger<ModelReplicaGrain> logger) : Grain, IModelReplicaGrain
{
    private LocalReplica? _loaded;
    private Task<ReplicaInfo>? _loading;

    private ModelId Id => ModelId.Parse(this.GetPrimaryKeyString());

    public Task<ReplicaInfo> LoadAsync(ModelManifest manifest, ModelArtifact artifact)
    {
        if (_loaded is { } loaded && loaded.Artifact == artifact)
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
        var loaded = _loaded ?? await LoadRegisteredAsync();
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
        Retire();
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        Retire();
        return Task.CompletedTask;
    }

    private async Task<LocalReplica> LoadRegisteredAsync()
    {
        // First request after a restart: the model grain knows the registration and loads this replica.
        var status = await GrainFactory.GetGrain<IModelGrain>(Id.Key).EnsureLoadedAsync();
        return _loaded ?? throw new ModelException(
            ModelErrorKind.Unavailable,
            $"Model '{Id.Name}' version '{Id.Version}' is {status.State.ToString().ToLowerInvariant()}: {status.Reason}");
    }

    private async Task<ReplicaInfo> LoadCoreAsync(ModelManifest manifest, ModelArtifact artifact)
    {
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

            var started = Stopwatch.GetTimestamp();
            var session = await Task.Run(() => OnnxModelSession.Open(path, manifest, runtimeOptions.Value));
            var info = new ReplicaInfo(session.ExecutionProvider, silo.SiloAddress.ToString(), Stopwatch.GetElapsedTime(started));
            Retire();
            _loaded = new LocalReplica(manifest, artifact, session, info, runtimeOptions.Value.ConcurrentRunsFor(manifest));
            directory.Publish(this.GetPrimaryKeyString(), _loaded);
            CarmlTelemetry.ModelLoadSeconds.Record(info.LoadTime.TotalSeconds, new("model", manifest.Name), new("version", manifest.Version));
            CarmlTelemetry.TrackLoaded(_loaded, manifest.Name, manifest.Version, info.SiloAddress, artifact.SizeBytes);
            LogLoaded(logger, this.GetPrimaryKeyString(), info.ExecutionProvider, info.LoadTime.TotalMilliseconds);
            return info;
        }
        finally
        {
            _loading = null;
        }
    }

    private void Retire()
    {
        if (_loaded is { } loaded)
        {
            _loaded = null;
            directory.Withdraw(this.GetPrimaryKeyString(), loaded);
            CarmlTelemetry.UntrackLoaded(loaded);
            loaded.Retire();
        }
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Replica {Replica} loaded on {Provider} in {LoadMs:F1} ms")]
    private static partial void LogLoaded(ILogger logger, string replica, string provider, double loadMs);
}

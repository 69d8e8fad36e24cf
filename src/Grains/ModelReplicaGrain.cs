using System.Diagnostics;
using Carml.Orleans.Core;
using Carml.Orleans.Core.Batching;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Carml.Orleans.Grains;

/// <summary>
/// Holds the loaded ONNX Runtime session of one model version and its dynamic batcher. Reentrant: the grain's own
/// bookkeeping runs on its single-threaded turn; requests wait in the batcher's queue (where a deadline or the caller's
/// cancellation takes them out) and batches run on the thread pool. A session is disposed only after the requests
/// using it have finished.
/// </summary>
[Reentrant]
public sealed partial class ModelReplicaGrain(
    ContentStore contentStore,
    IOptions<OnnxRuntimeOptions> runtimeOptions,
    ILocalSiloDetails silo,
    ILogger<ModelReplicaGrain> logger) : Grain, IModelReplicaGrain
{
    private LoadedModel? _loaded;
    private Task<ReplicaInfo>? _loading;

    private ModelId Id => ModelId.Parse(this.GetPrimaryKeyString());

    public Task<ReplicaInfo> LoadAsync(ModelManifest manifest, ModelArtifact artifact)
    {
        if (_loaded is { } loaded && loaded.Artifact == artifact)
        {
            return Task.FromResult(loaded.Info);
        }

        return _loading ??= LoadCoreAsync(manifest, artifact);
    }

    public async Task<InferenceResponse> InferAsync(InferenceRequest request, CancellationToken cancellationToken = default)
    {
        var loaded = _loaded ?? await LoadRegisteredAsync();
        var rows = InferenceRequestValidator.Validate(loaded.Manifest, request);
        TimeSpan? timeout = request.TimeoutMicroseconds > 0 ? TimeSpan.FromMicroseconds(request.TimeoutMicroseconds) : null;

        loaded.InFlight++;
        try
        {
            var result = await loaded.Batcher.EnqueueAsync(request, (int)rows, timeout, cancellationToken);
            return new InferenceResponse(
                loaded.Manifest.Name,
                loaded.Manifest.Version,
                result.Value,
                new InferenceTimings(Microseconds(result.QueueTime), Microseconds(result.ComputeTime), result.BatchRows))
            {
                Id = request.Id,
            };
        }
        finally
        {
            loaded.InFlight--;
            loaded.DisposeIfRetiredAndIdle();
        }
    }

    public Task<ReplicaStatistics> GetStatisticsAsync()
    {
        if (_loaded is not { } loaded)
        {
            return Task.FromResult(new ReplicaStatistics(0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
        }

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

    private async Task<LoadedModel> LoadRegisteredAsync()
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
            var batcher = new DynamicBatcher<InferenceRequest, IReadOnlyList<InferenceTensor>>(
                DynamicBatcherOptions.For(manifest, runtimeOptions.Value.ConcurrentRunsFor(manifest)),
                requests => Task.Run(() => session.RunBatch(requests)),
                OnnxModelSession.CanShareBatch,
                TimeProvider.System,
                $"model '{manifest.Name}' version '{manifest.Version}'");
            _loaded = new LoadedModel(manifest, artifact, session, batcher, info);
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
            loaded.Retired = true;
            loaded.DisposeIfRetiredAndIdle();
        }
    }

    private static long Microseconds(TimeSpan time) => time.Ticks / TimeSpan.TicksPerMicrosecond;

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Replica {Replica} loaded on {Provider} in {LoadMs:F1} ms")]
    private static partial void LogLoaded(ILogger logger, string replica, string provider, double loadMs);

    /// <summary>A session with the requests currently using it; touched only on the grain's turn.</summary>
    private sealed class LoadedModel(
        ModelManifest manifest,
        ModelArtifact artifact,
        OnnxModelSession session,
        DynamicBatcher<InferenceRequest, IReadOnlyList<InferenceTensor>> batcher,
        ReplicaInfo info)
    {
        public ModelManifest Manifest { get; } = manifest;
        public ModelArtifact Artifact { get; } = artifact;
        public OnnxModelSession Session { get; } = session;
        public DynamicBatcher<InferenceRequest, IReadOnlyList<InferenceTensor>> Batcher { get; } = batcher;
        public ReplicaInfo Info { get; } = info;
        public int InFlight { get; set; }
        public bool Retired { get; set; }

        public void DisposeIfRetiredAndIdle()
        {
            if (Retired)
            {
                // Queued requests fail over (Unavailable); the session goes once the last running one is done.
                Batcher.Dispose();
            }

            if (Retired && InFlight == 0)
            {
                Session.Dispose();
            }
        }
    }
}

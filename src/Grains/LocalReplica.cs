using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Carml.Orleans.Core;
using Carml.Orleans.Core.Batching;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Grains.Telemetry;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains;

/// <summary>
/// The replicas whose activation lives in this process, by replica key. In standalone mode the gateway shares the
/// silo's process, so its router hands a request straight to the replica's batcher instead of sending an Orleans
/// message to itself; a replica on another silo (or one that is not loaded here) is reached by a grain call as usual.
/// </summary>
public sealed class LocalReplicaDirectory
{
    private readonly ConcurrentDictionary<string, LocalReplica> _replicas = new(StringComparer.Ordinal);

    public bool TryGet(string replicaKey, [NotNullWhen(true)] out LocalReplica? replica) => _replicas.TryGetValue(replicaKey, out replica);

    internal void Publish(string replicaKey, LocalReplica replica) => _replicas[replicaKey] = replica;

    internal void Withdraw(string replicaKey, LocalReplica replica) => _replicas.TryRemove(KeyValuePair.Create(replicaKey, replica));
}

/// <summary>
/// A loaded session with its batcher, owned by a <see cref="ModelReplicaGrain"/> activation. Callers bracket their use
/// with <see cref="TryAcquire"/> and <see cref="Release"/>; once the grain retires it, queued requests fail over
/// (Unavailable) and the session is disposed when the last running request is done.
/// </summary>
public sealed class LocalReplica : Placement.IMemoryResident
{
    /// <summary>A run this short executes on the caller's thread rather than hopping to the thread pool.</summary>
    private static readonly TimeSpan InlineRunLimit = TimeSpan.FromMicroseconds(200);

    /// <summary>How long shortcut calls may go on without a grain call keeping the activation alive.</summary>
    private static readonly TimeSpan Freshness = TimeSpan.FromSeconds(10);

    private int _inFlight;
    private int _admitted;
    private long _lastUsed = Stopwatch.GetTimestamp();
    private volatile bool _retired;
    private int _disposed;
    private long _lastGrainCall = Stopwatch.GetTimestamp();
    private double _meanRunTicks = double.NaN;
    private readonly ReplicaTelemetry _telemetry;

    internal LocalReplica(ModelManifest manifest, ModelArtifact artifact, OnnxModelSession session, ReplicaInfo info, int maxConcurrentRuns)
    {
        MaxConcurrentRequests = manifest.Deployment?.MaxConcurrentRequests ?? 0;
        Manifest = manifest;
        Artifact = artifact;
        Session = session;
        Info = info;
        _telemetry = new ReplicaTelemetry(manifest, info);
        Batcher = new DynamicBatcher<InferenceRequest, IReadOnlyList<InferenceTensor>>(
            DynamicBatcherOptions.For(manifest, maxConcurrentRuns),
            ExecuteAsync,
            OnnxModelSession.CanShareBatch,
            TimeProvider.System,
            $"model '{manifest.Name}' version '{manifest.Version}'");
    }

    public ModelManifest Manifest { get; }

    public ModelArtifact Artifact { get; }

    public ReplicaInfo Info { get; }

    internal OnnxModelSession Session { get; }

    /// <summary>Requests this replica admits at once, queued plus running (manifest <c>deployment.max_concurrent_requests</c>); 0 = no cap.</summary>
    public int MaxConcurrentRequests { get; }

    public int InFlight => Volatile.Read(ref _inFlight);

    public long LastUsed => Volatile.Read(ref _lastUsed);

    string Placement.IMemoryResident.ExecutionProvider => Info.ExecutionProvider;

    /// <summary>What the memory budget calls to evict this replica (set by the owning grain).</summary>
    internal Action? OnEvict { get; set; }

    public bool IsRetired => _retired;

    void Placement.IMemoryResident.Evict() => OnEvict?.Invoke();

    internal DynamicBatcher<InferenceRequest, IReadOnlyList<InferenceTensor>> Batcher { get; }

    /// <summary>Whether the owning activation heard from Orleans recently, so it will not be collected under the shortcut.</summary>
    public bool IsFresh => Stopwatch.GetElapsedTime(Volatile.Read(ref _lastGrainCall)) < Freshness;

    internal void Touch() => Volatile.Write(ref _lastGrainCall, Stopwatch.GetTimestamp());

    /// <summary>Counts a request in; false when the replica is retired (go through the grain instead).</summary>
    public bool TryAcquire()
    {
        Interlocked.Increment(ref _inFlight);
        if (_retired)
        {
            Release();
            return false;
        }

        return true;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && _retired)
        {
            DisposeSession();
        }
    }

    /// <summary>Validates the request and runs it through the batcher; the caller holds <see cref="TryAcquire"/>.</summary>
    public async Task<InferenceResponse> InferAsync(InferenceRequest request, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _lastUsed, Stopwatch.GetTimestamp());
        if (MaxConcurrentRequests > 0)
        {
            if (Interlocked.Increment(ref _admitted) > MaxConcurrentRequests)
            {
                Interlocked.Decrement(ref _admitted);
                throw new ModelException(
                    ModelErrorKind.ResourceExhausted,
                    $"Model '{Manifest.Name}' version '{Manifest.Version}': this replica already has {MaxConcurrentRequests} requests (deployment.max_concurrent_requests); retry or use another replica.");
            }

            try
            {
                return await InferCoreAsync(request, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref _admitted);
            }
        }

        return await InferCoreAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private async Task<InferenceResponse> InferCoreAsync(InferenceRequest request, CancellationToken cancellationToken)
    {
        var rows = InferenceRequestValidator.Validate(Manifest, request);
        TimeSpan? timeout = request.TimeoutMicroseconds > 0 ? TimeSpan.FromMicroseconds(request.TimeoutMicroseconds) : null;
        var level = CarmlTraceLevels.Current;
        var enqueued = ReplicaTelemetry.Enqueued(level);
        var result = await Batcher.EnqueueAsync(request, (int)rows, timeout, cancellationToken).ConfigureAwait(false);
        _telemetry.Answered(request, result, level, enqueued);
        return new InferenceResponse(
            Manifest.Name,
            Manifest.Version,
            result.Value,
            new InferenceTimings(Microseconds(result.QueueTime), Microseconds(result.ComputeTime), result.BatchRows))
        {
            Id = request.Id,
        };
    }

    internal void Retire()
    {
        _retired = true;
        Batcher.Dispose();
        if (Volatile.Read(ref _inFlight) == 0)
        {
            DisposeSession();
        }
    }

    /// <summary>
    /// Runs a batch: on the caller's thread when this model's runs are known to be short (a hop to the thread pool
    /// would cost more than the run), else on the thread pool so the caller (a grain turn, a request thread) is free.
    /// </summary>
    private Task<IReadOnlyList<IReadOnlyList<InferenceTensor>>> ExecuteAsync(IReadOnlyList<InferenceRequest> requests)
    {
        var mean = Volatile.Read(ref _meanRunTicks);
        if (!double.IsNaN(mean) && mean < InlineRunLimit.TotalSeconds * Stopwatch.Frequency)
        {
            try
            {
                return Task.FromResult(Run(requests));
            }
            catch (Exception e)
            {
                return Task.FromException<IReadOnlyList<IReadOnlyList<InferenceTensor>>>(e);
            }
        }

        return Task.Run(() => Run(requests));
    }

    private IReadOnlyList<IReadOnlyList<InferenceTensor>> Run(IReadOnlyList<InferenceRequest> requests)
    {
        var started = Stopwatch.GetTimestamp();
        var results = Session.RunBatch(requests);
        var ticks = (double)(Stopwatch.GetTimestamp() - started);
        _telemetry.BatchRan(Stopwatch.GetElapsedTime(started), Rows(requests));
        var mean = Volatile.Read(ref _meanRunTicks);
        Volatile.Write(ref _meanRunTicks, double.IsNaN(mean) ? ticks : (mean * 0.9) + (ticks * 0.1));
        return results;
    }

    private int Rows(IReadOnlyList<InferenceRequest> requests)
    {
        if (Manifest.MaxBatchSize <= 0)
        {
            return requests.Count;
        }

        var rows = 0;
        foreach (var request in requests)
        {
            rows += request.Inputs.Count > 0 && request.Inputs[0].Shape.Length > 0 ? (int)request.Inputs[0].Shape[0] : 1;
        }

        return rows;
    }

    private void DisposeSession()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Session.Dispose();
        }
    }

    private static long Microseconds(TimeSpan time) => time.Ticks / TimeSpan.TicksPerMicrosecond;
}

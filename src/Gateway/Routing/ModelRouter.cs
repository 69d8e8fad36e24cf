using System.Collections.Concurrent;
using Carml.Orleans.Core;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Gateway.Observability;
using Carml.Orleans.Grains;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Routing;

/// <summary>One replica of a model version: its grain key (<c>name/version/i</c>) and reference.</summary>
public sealed record ReplicaTarget(string Key, IModelReplicaGrain Grain);

/// <summary>
/// Where predictions for a model version go: its manifest, one target per replica (<see cref="ModelStatus.ReplicaCount"/>),
/// the balancer that picks among them, and the placement a call attaches so a (re)activation lands on an eligible silo.
/// </summary>
public sealed record ModelRoute(ModelId Id, ModelManifest Manifest, IReadOnlyList<ReplicaTarget> Replicas, ReplicaBalancer Balancer)
{
    public ReplicaPlacement Placement { get; } = ReplicaPlacement.For(Manifest);

    public int ReplicaCount => Replicas.Count;
}

/// <summary>
/// Resolves a model name and optional version (empty or <c>latest</c> = highest) to its replicas and runs predictions on
/// them. Routes are cached for <see cref="GatewayOptions.RouteCacheSeconds"/> so the hot path makes one grain call, the
/// inference; registration and deletion through this gateway invalidate the name at once, a NOT_FOUND from a replica
/// does too, and a failed try makes the route refresh on next use (keeping the old one if the refresh itself fails).
/// </summary>
/// <remarks>
/// <para>Each try picks a replica with <see cref="ReplicaBalancer"/> (least outstanding of two random healthy ones).
/// A try that fails because the replica's silo is gone, it is unavailable, or it is full (when another replica exists)
/// is retried on another replica, or on the same key once Orleans re-activates it elsewhere, with a jittered back-off,
/// within the request's deadline and <see cref="FailoverOptions"/>; see <see cref="FailoverClassifier"/>. When tries or
/// time run out the answer is UNAVAILABLE, or DEADLINE_EXCEEDED once the caller's deadline has passed.</para>
/// <para>When the replica's activation lives in this process (standalone mode), the request goes straight to its batcher
/// through the silo's <see cref="LocalReplicaDirectory"/>, skipping an Orleans message to itself; the grain call is
/// the path otherwise, and at least every few seconds, so the activation stays alive and in charge.</para>
/// </remarks>
public sealed partial class ModelRouter(
    IGrainFactory grains,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    LocalReplicaDirectory? local = null,
    RunRecorder? recorder = null,
    IOptions<FailoverOptions>? failover = null,
    FailoverCounters? counters = null,
    ILogger<ModelRouter>? logger = null)
{
    /// <summary>How long a route that could not be refreshed (its model grain's silo is gone) is used before trying again.</summary>
    private static readonly TimeSpan StaleRouteGrace = TimeSpan.FromSeconds(1);

    /// <summary>How long after the request's deadline a grain call that has not answered is abandoned.</summary>
    private static readonly TimeSpan DeadlineGrace = TimeSpan.FromMilliseconds(250);

    private readonly ConcurrentDictionary<(string Name, string Version), (ModelRoute Route, long Expires)> _routes = new();
    private readonly long _ttl = (long)(options.Value.RouteCacheSeconds * time.TimestampFrequency);
    private readonly FailoverOptions _failover = failover?.Value ?? new FailoverOptions();
    private readonly ILogger _logger = logger ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    /// <summary>What replica choice and failover did; for metrics.</summary>
    public FailoverCounters Counters { get; } = counters ?? new FailoverCounters();

    public async ValueTask<ModelRoute> ResolveAsync(string name, string? version)
    {
        var key = (name, VersionSelector.IsLatest(version) ? VersionSelector.Latest : version);
        var now = time.GetTimestamp();
        var found = _routes.TryGetValue(key, out var cached);
        if (found && cached.Expires > now)
        {
            return cached.Route;
        }

        ModelRoute route;
        try
        {
            route = await LoadRouteAsync(name, version, found ? cached.Route : null);
        }
        catch (Exception e) when (found && FailoverClassifier.IsSiloGone(e))
        {
            // The model or catalog grain's silo is gone and not yet declared dead: the replicas we know may still serve.
            Counters.UsedStaleRoute();
            LogStaleRoute(_logger, cached.Route.Id.Key, e.GetType().Name, e.Message);
            _routes[key] = (cached.Route, now + (long)(StaleRouteGrace.TotalSeconds * time.TimestampFrequency));
            return cached.Route;
        }

        _routes[key] = (route, now + _ttl);
        return route;
    }

    /// <summary>The concrete version: the given one, or the highest registered when empty or <c>latest</c>.</summary>
    public async ValueTask<ModelId> ResolveVersionAsync(string name, string? version)
    {
        if (!VersionSelector.IsLatest(version))
        {
            return new ModelId(name, version);
        }

        var versions = await GetVersionsAsync(name);
        return VersionSelector.Select(version, versions) is { } latest ? new ModelId(name, latest) : throw ModelException.UnknownModel(name, null);
    }

    public Task<IReadOnlyList<string>> GetVersionsAsync(string name) =>
        grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync(name);

    /// <summary>
    /// Forgets every cached route of a model name (after a registration, deletion, scaling or a NOT_FOUND from a
    /// replica), so the next request reads the model's replica count and manifest again.
    /// </summary>
    public void Invalidate(string name)
    {
        foreach (var key in _routes.Keys)
        {
            if (key.Name == name)
            {
                _routes.TryRemove(key, out _);
            }
        }
    }

    /// <summary>
    /// Runs a request on one of the model's replicas, retrying on another when the one picked cannot answer (see the
    /// class remarks). The token (a gRPC deadline or cancellation, an HTTP client going away) follows the request into
    /// the replica's queue and stops retries.
    /// </summary>
    public async Task<InferenceResponse> InferAsync(string name, string? version, InferenceRequest request, CancellationToken cancellationToken = default)
    {
        var recording = recorder is not null && recorder.ShouldRecord();
        var started = recording ? time.GetTimestamp() : 0;
        var createdAt = recording ? time.GetUtcNow() : default;
        var budget = RetryBudget.Start(request.TimeoutMicroseconds, _failover, time);
        var observed = InferenceMetrics.Begin();
        ModelRoute? route = null;
        var attempt = 0;
        var failed = -1;
        var busyRefusals = 0;
        while (true)
        {
            attempt++;
            var replica = -1;
            try
            {
                route = await GatewaySpans.RouteAsync(this, name, version);
                replica = route.Balancer.Pick(Random.Shared, route.Replicas.Count > 1 ? failed : -1, out var skipped);
                Counters.Picked(skipped);
                LogPicked(_logger, route.Replicas[replica].Key, route.Balancer.Outstanding(replica), attempt);
                var attemptRequest = attempt == 1 || request.TimeoutMicroseconds <= 0
                    ? request
                    : request with { TimeoutMicroseconds = budget.RemainingMicroseconds(time.GetTimestamp()) };
                var response = await RunAsync(route, replica, attemptRequest, budget, cancellationToken);
                route.Balancer.Succeeded(replica);
                if (attempt > 1)
                {
                    Counters.RecoveredAfterRetry();
                    LogRecovered(_logger, route.Replicas[replica].Key, attempt);
                }

                if (recording)
                {
                    GatewaySpans.Record(recorder!, PredictionRecords.Succeeded(route, request, response, createdAt, time.GetElapsedTime(started)));
                }

                InferenceMetrics.End(observed, route, null);
                return response;
            }
            catch (Exception e)
            {
                if (!ShouldRetry(e, name, route, replica, attempt, ref busyRefusals, budget, cancellationToken, out var delay, out var giveUp))
                {
                    if (recording && route is not null && ErrorMapping.Classify(giveUp ?? e) is { Kind: not ModelErrorKind.NotFound } failure)
                    {
                        GatewaySpans.Record(recorder!, PredictionRecords.Failed(route, request, failure.Message, createdAt, time.GetElapsedTime(started)));
                    }

                    InferenceMetrics.End(observed, route, giveUp ?? e);

                    if (giveUp is not null)
                    {
                        throw giveUp;
                    }

                    throw;
                }

                failed = replica;
                if (delay > TimeSpan.Zero)
                {
                    try
                    {
                        await Task.Delay(delay, time, cancellationToken);
                    }
                    catch (OperationCanceledException cancelled)
                    {
                        InferenceMetrics.End(observed, route, cancelled);
                        throw;
                    }
                }
            }
        }
    }

    /// <summary>
    /// After a failed try: true = try again after <paramref name="delay"/>; false = answer with <paramref name="giveUp"/>
    /// (tries or time ran out) or, when that is null, with the failure itself (not retryable).
    /// </summary>
    private bool ShouldRetry(
        Exception e, string name, ModelRoute? route, int replica, int attempt, ref int busyRefusals, RetryBudget budget, CancellationToken cancellationToken,
        out TimeSpan delay, out ModelException? giveUp)
    {
        delay = TimeSpan.Zero;
        giveUp = null;
        var now = time.GetTimestamp();
        if (e is ModelException { Kind: ModelErrorKind.NotFound })
        {
            Invalidate(name);
            return false;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return false;
        }

        var kind = FailoverClassifier.Classify(e);
        // A full replica hands the request to another one, but once as many replicas as the model has were full the
        // model is overloaded: answer RESOURCE_EXHAUSTED instead of bouncing between full replicas.
        if (kind == FailureKind.ReplicaBusy)
        {
            busyRefusals++;
        }

        if (kind == FailureKind.Final || (kind == FailureKind.ReplicaBusy && (route is null || busyRefusals >= route.Replicas.Count)))
        {
            return false;
        }

        if (route is not null && replica >= 0)
        {
            if (kind != FailureKind.ReplicaBusy)
            {
                route.Balancer.Failed(replica, _failover.ReplicaBackoff);
                Counters.ReplicaFailed();
                LogReplicaFailed(_logger, route.Replicas[replica].Key, e.GetType().Name, e.Message, _failover.ReplicaBackoff.TotalMilliseconds);
            }

            if (kind == FailureKind.SiloGone)
            {
                // The cluster changed: read the replica set again on the next try (the stale route stays if that fails).
                Expire(route.Id);
            }
        }

        // Another healthy replica is tried at once; the same one (or none healthy) after a jittered pause.
        var healthyOther = route is not null && route.Replicas.Count > 1 && HasHealthyOther(route.Balancer, replica);
        delay = healthyOther ? TimeSpan.Zero : RetryBudget.Backoff(attempt, _failover, Random.Shared.NextDouble());
        if (!budget.AllowsRetry(attempt, delay, now))
        {
            giveUp = GiveUp(name, route, attempt, e, budget.DeadlinePassed(now + (long)(delay.TotalSeconds * time.TimestampFrequency)));
            return false;
        }

        Counters.Retried();
        LogRetrying(_logger, route?.Id.Key ?? name, attempt, e.GetType().Name, e.Message, delay.TotalMilliseconds);
        return true;
    }

    private ModelException GiveUp(string name, ModelRoute? route, int attempts, Exception last, bool deadlinePassed)
    {
        Counters.GaveUp();
        LogGaveUp(_logger, route?.Id.Key ?? name, attempts, deadlinePassed, last.GetType().Name, last.Message);
        var model = route is null ? $"Model '{name}'" : $"Model '{route.Id.Name}' version '{route.Id.Version}'";
        return deadlinePassed
            ? new ModelException(ModelErrorKind.DeadlineExceeded, $"{model} could not be served before the request's deadline ({attempts} tries; last: {last.Message}).")
            : last is ModelException { Kind: ModelErrorKind.Unavailable or ModelErrorKind.ResourceExhausted } refused
                ? new ModelException(refused.Kind, $"{refused.Message} ({attempts} tries)")
                : new ModelException(ModelErrorKind.Unavailable, $"{model} has no replica that can serve now ({attempts} tries; last: {last.Message}); retry shortly.");
    }

    private static bool HasHealthyOther(ReplicaBalancer balancer, int replica)
    {
        for (var i = 0; i < balancer.Count; i++)
        {
            if (i != replica && !balancer.IsBackingOff(i))
            {
                return true;
            }
        }

        return false;
    }

    private async Task<InferenceResponse> RunAsync(ModelRoute route, int index, InferenceRequest request, RetryBudget budget, CancellationToken cancellationToken)
    {
        var target = route.Replicas[index];
        route.Balancer.Started(index);
        try
        {
            if (local is not null && local.TryGet(target.Key, out var replica) && replica.IsFresh && replica.TryAcquire())
            {
                using var span = GatewaySpans.StartReplicaCall(route, request, GatewaySpans.LocalPath);
                try
                {
                    // The replica's queue enforces the request's timeout itself.
                    return await replica.InferAsync(request, cancellationToken);
                }
                catch (Exception e)
                {
                    CarmlTelemetry.Fail(span, e);
                    throw;
                }
                finally
                {
                    replica.Release();
                }
            }

            // If this call has to activate the replica (first use, or its silo died), the placement director reads this.
            route.Placement.Apply();
            using var call = GatewaySpans.StartReplicaCall(route, request, GatewaySpans.GrainPath);
            try
            {
                return await CallReplicaAsync(route, target, request, budget, cancellationToken);
            }
            catch (Exception e)
            {
                CarmlTelemetry.Fail(call, e);
                throw;
            }
        }
        finally
        {
            route.Balancer.Finished(index);
        }
    }

    private async Task<InferenceResponse> CallReplicaAsync(ModelRoute route, ReplicaTarget target, InferenceRequest request, RetryBudget budget, CancellationToken cancellationToken)
    {
        if (!budget.HasCallerDeadline)
        {
            return await target.Grain.InferAsync(request, cancellationToken);
        }

        // The replica's queue expires the request at its deadline itself; this only ends a try whose silo stopped
        // answering, shortly after the deadline (never before, so the replica always gets to see and count it).
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(budget.Remaining(time.GetTimestamp()) + DeadlineGrace);
        try
        {
            return await target.Grain.InferAsync(request, limit.Token);
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            Counters.GaveUp();
            LogGaveUp(_logger, route.Id.Key, 0, true, nameof(OperationCanceledException), "the try reached the request's deadline");
            throw new ModelException(ModelErrorKind.DeadlineExceeded, $"Model '{route.Id.Name}' version '{route.Id.Version}' did not answer before the request's deadline.");
        }
    }

    private async Task<ModelRoute> LoadRouteAsync(string name, string? version, ModelRoute? previous)
    {
        var id = await ResolveVersionAsync(name, version);
        var status = await grains.GetGrain<IModelGrain>(id.Key).GetStatusAsync()
            ?? throw ModelException.UnknownModel(id.Name, id.Version);
        var count = Math.Max(1, status.ReplicaCount);

        // Keep the balancer (outstanding counts, back-offs) while the replica set is the same.
        var balancer = previous is not null && previous.Id == id && previous.Replicas.Count == count
            ? previous.Balancer
            : new ReplicaBalancer(count, time);
        var replicas = new ReplicaTarget[count];
        for (var i = 0; i < count; i++)
        {
            var key = id.ReplicaKey(i);
            replicas[i] = new ReplicaTarget(key, grains.GetGrain<IModelReplicaGrain>(key));
        }

        return new ModelRoute(id, status.Manifest, replicas, balancer);
    }

    /// <summary>Makes cached routes of a model version refresh on next use, keeping them as a fallback.</summary>
    private void Expire(ModelId id)
    {
        foreach (var (key, entry) in _routes)
        {
            if (entry.Route.Id == id && entry.Expires != 0)
            {
                _routes.TryUpdate(key, (entry.Route, 0), entry);
            }
        }
    }

    [LoggerMessage(EventId = 2401, Level = LogLevel.Debug, Message = "Picked replica {Replica} ({Outstanding} outstanding here) for try {Attempt}")]
    private static partial void LogPicked(ILogger logger, string replica, int outstanding, int attempt);

    [LoggerMessage(EventId = 2402, Level = LogLevel.Warning, Message = "Replica {Replica} failed ({Error}: {Reason}); skipped for {BackoffMs} ms while another is healthy")]
    private static partial void LogReplicaFailed(ILogger logger, string replica, string error, string reason, double backoffMs);

    [LoggerMessage(EventId = 2403, Level = LogLevel.Information, Message = "Retrying {Model} after try {Attempt} failed ({Error}: {Reason}) in {DelayMs:F0} ms")]
    private static partial void LogRetrying(ILogger logger, string model, int attempt, string error, string reason, double delayMs);

    [LoggerMessage(EventId = 2404, Level = LogLevel.Information, Message = "Replica {Replica} served the request on try {Attempt}")]
    private static partial void LogRecovered(ILogger logger, string replica, int attempt);

    [LoggerMessage(EventId = 2405, Level = LogLevel.Warning, Message = "Gave up on {Model} after {Attempts} tries (deadline passed: {DeadlinePassed}); last failure {Error}: {Reason}")]
    private static partial void LogGaveUp(ILogger logger, string model, int attempts, bool deadlinePassed, string error, string reason);

    [LoggerMessage(EventId = 2406, Level = LogLevel.Warning, Message = "Could not refresh the route of {Model} ({Error}: {Reason}); using the cached one")]
    private static partial void LogStaleRoute(ILogger logger, string model, string error, string reason);
}

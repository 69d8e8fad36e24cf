using Carml.Orleans.Core;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Gateway.Observability;
using System.Collections.Concurrent;
using Carml.Orleans.Grains;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Routing;

/// <summary>Where a prediction for a model version goes.</summary>
public sealed record ModelRoute(ModelId Id, ModelManifest Manifest, IModelReplicaGrain Replica)
{
    public string ReplicaKey { get; } = Id.ReplicaKey(0);
}

/// <summary>
/// Resolves a model name and optional version (empty or <c>latest</c> = highest) to the replica that serves it. Routes
/// are cached for <see cref="GatewayOptions.RouteCacheSeconds"/> so the hot path makes one grain call, the inference;
/// registration and deletion through this gateway invalidate the name at once.
/// </summary>
/// <remarks>
/// When the replica's activation lives in this process (standalone mode), the request goes straight to its batcher
/// through the silo's <see cref="LocalReplicaDirectory"/>, skipping an Orleans message to itself; the grain call is
/// the path otherwise, and at least every few seconds, so the activation stays alive and in charge.
/// </remarks>
public sealed class ModelRouter(
    IGrainFactory grains, IOptions<GatewayOptions> options, TimeProvider time, LocalReplicaDirectory? local = null, RunRecorder? recorder = null)
{
    private readonly ConcurrentDictionary<(string Name, string Version), (ModelRoute Route, long Expires)> _routes = new();
    private readonly long _ttl = (long)(options.Value.RouteCacheSeconds * time.TimestampFrequency);

    public const string Latest = "latest";

    public async ValueTask<ModelRoute> ResolveAsync(string name, string? version)
    {
        var key = (name, string.IsNullOrEmpty(version) || version.Equals(Latest, StringComparison.OrdinalIgnoreCase) ? Latest : version);
        var now = time.GetTimestamp();
        if (_routes.TryGetValue(key, out var cached) && cached.Expires > now)
        {
            return cached.Route;
        }

        var id = await ResolveVersionAsync(name, version);
        var status = await grains.GetGrain<IModelGrain>(id.Key).GetStatusAsync()
            ?? throw ModelException.UnknownModel(id.Name, id.Version);
        var route = new ModelRoute(id, status.Manifest, grains.GetGrain<IModelReplicaGrain>(id.ReplicaKey(0)));
        _routes[key] = (route, now + _ttl);
        return route;
    }

    /// <summary>The concrete version: the given one, or the highest registered when empty or <c>latest</c>.</summary>
    public async ValueTask<ModelId> ResolveVersionAsync(string name, string? version)
    {
        if (!string.IsNullOrEmpty(version) && !string.Equals(version, Latest, StringComparison.OrdinalIgnoreCase))
        {
            return new ModelId(name, version);
        }

        var versions = await GetVersionsAsync(name);
        return versions.Count > 0 ? new ModelId(name, versions[^1]) : throw ModelException.UnknownModel(name, null);
    }

    public Task<IReadOnlyList<string>> GetVersionsAsync(string name) =>
        grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync(name);

    /// <summary>Forgets every cached route of a model name (after a registration, deletion or a NOT_FOUND from a replica).</summary>
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
    /// Runs a request on the model's replica, forgetting stale routes when the model has gone. The token (a gRPC
    /// deadline or cancellation, an HTTP client going away) follows the request into the replica's queue.
    /// </summary>
    public async Task<InferenceResponse> InferAsync(string name, string? version, InferenceRequest request, CancellationToken cancellationToken = default)
    {
        var observed = InferenceMetrics.Begin();
        ModelRoute? route = null;
        try
        {
            route = await GatewaySpans.RouteAsync(this, name, version);
            var response = await InferOnRouteAsync(name, route, request, cancellationToken);
            InferenceMetrics.End(observed, route, null);
            return response;
        }
        catch (Exception e)
        {
            InferenceMetrics.End(observed, route, e);
            throw;
        }
    }

    private async Task<InferenceResponse> InferOnRouteAsync(string name, ModelRoute route, InferenceRequest request, CancellationToken cancellationToken)
    {
        if (recorder is null || !recorder.ShouldRecord())
        {
            return await RunAsync(name, route, request, cancellationToken);
        }

        var started = time.GetTimestamp();
        var createdAt = time.GetUtcNow();
        try
        {
            var response = await RunAsync(name, route, request, cancellationToken);
            GatewaySpans.Record(recorder, PredictionRecords.Succeeded(route, request, response, createdAt, time.GetElapsedTime(started)));
            return response;
        }
        catch (Exception e) when (ErrorMapping.Classify(e) is { Kind: not ModelErrorKind.NotFound } failure)
        {
            GatewaySpans.Record(recorder, PredictionRecords.Failed(route, request, failure.Message, createdAt, time.GetElapsedTime(started)));
            throw;
        }
    }

    private async Task<InferenceResponse> RunAsync(string name, ModelRoute route, InferenceRequest request, CancellationToken cancellationToken)
    {
        if (local is not null && local.TryGet(route.ReplicaKey, out var replica) && replica.IsFresh && replica.TryAcquire())
        {
            using var span = GatewaySpans.StartReplicaCall(route, request, GatewaySpans.LocalPath);
            try
            {
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

        using var call = GatewaySpans.StartReplicaCall(route, request, GatewaySpans.GrainPath);
        try
        {
            return await route.Replica.InferAsync(request, cancellationToken);
        }
        catch (ModelException e) when (e.Kind == ModelErrorKind.NotFound)
        {
            CarmlTelemetry.Fail(call, e);
            Invalidate(name);
            throw;
        }
        catch (Exception e)
        {
            CarmlTelemetry.Fail(call, e);
            throw;
        }
    }
}

using System.Diagnostics;
using Carml.Orleans.Core;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.Observability;

/// <summary>The gateway's spans of an inference: routing and run recording (application), the replica call (model).</summary>
public static class GatewaySpans
{
    public const string LocalPath = "local";
    public const string GrainPath = "grain";

    /// <summary>Resolves the route, inside a <c>carml.route</c> span at level application and above.</summary>
    public static ValueTask<ModelRoute> RouteAsync(ModelRouter router, string name, string? version) =>
        CarmlTelemetry.IsTraced(CarmlTraceLevel.Application) ? TracedRouteAsync(router, name, version) : router.ResolveAsync(name, version);

    // The span starts inside the async method, so ending it restores the caller's current span.
    private static async ValueTask<ModelRoute> TracedRouteAsync(ModelRouter router, string name, string? version)
    {
        using var span = CarmlTelemetry.StartSpan(CarmlTelemetry.Spans.Route, CarmlTraceLevel.Application);
        span?.SetTag(CarmlTelemetry.Attributes.Model, name);
        try
        {
            var route = await router.ResolveAsync(name, version);
            span?.SetTag(CarmlTelemetry.Attributes.Version, route.Id.Version);
            return route;
        }
        catch (Exception e)
        {
            CarmlTelemetry.Fail(span, e);
            throw;
        }
    }

    /// <summary>The call into a model's replica (level model), in-process (<see cref="LocalPath"/>) or a grain call.</summary>
    public static Activity? StartReplicaCall(ModelRoute route, InferenceRequest request, string path)
    {
        var span = CarmlTelemetry.StartSpan(CarmlTelemetry.Spans.ReplicaCall, CarmlTraceLevel.Model, ActivityKind.Client);
        if (span is null)
        {
            return null;
        }

        span.SetTag(CarmlTelemetry.Attributes.Model, route.Id.Name);
        span.SetTag(CarmlTelemetry.Attributes.Version, route.Id.Version);
        span.SetTag(CarmlTelemetry.Attributes.Path, path);
        span.SetTag(CarmlTelemetry.Attributes.BatchSize, request.Inputs.Count > 0 && request.Inputs[0].Shape.Length > 0 ? request.Inputs[0].Shape[0] : 1);
        if (CarmlTraceLevels.Current >= CarmlTraceLevel.Full)
        {
            span.SetTag(CarmlTelemetry.Attributes.InputShapes, string.Join(";", request.Inputs.Select(i => $"{i.Name}:{TensorDatatypes.FormatShape(i.Shape)}")));
        }

        return span;
    }

    /// <summary>Queues a run record, inside a <c>carml.run.record</c> span at level application and above.</summary>
    public static void Record(RunRecorder recorder, RunRecord run)
    {
        using var span = CarmlTelemetry.StartSpan(CarmlTelemetry.Spans.RunRecord, CarmlTraceLevel.Application);
        var queued = recorder.TryRecord(run);
        if (span is not null)
        {
            span.SetTag(CarmlTelemetry.Attributes.RunId, run.Id);
            span.SetTag(CarmlTelemetry.Attributes.Model, run.Model);
            span.SetTag(CarmlTelemetry.Attributes.Version, run.Version);
            span.SetTag("carml.run.queued", queued);
        }
    }
}

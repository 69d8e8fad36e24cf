using System.Diagnostics;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Silo.Telemetry;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Observability;

/// <summary>
/// The trace level of one gateway request: <c>Carml-Trace-Level</c> (HTTP header, and gRPC metadata, which travels as an
/// HTTP/2 header), else <see cref="CarmlTraceLevel.Application"/> when the client sent a sampled W3C <c>traceparent</c>,
/// else <c>Carml:Tracing:DefaultLevel</c> (none). An invalid level is the client's mistake (400, INVALID_ARGUMENT).
/// </summary>
public sealed class GatewayTraceLevels(IOptions<TracingOptions> options)
{
    private readonly CarmlTraceLevel _default = options.Value.ParsedDefaultLevel();

    public CarmlTraceLevel Default => _default;

    public bool TryResolve(HttpRequest request, out CarmlTraceLevel level, out string? error)
    {
        error = null;
        if (request.Headers.TryGetValue(CarmlTraceLevels.HttpHeader, out var explicitLevel))
        {
            if (CarmlTraceLevels.TryParse(explicitLevel.ToString(), out level))
            {
                return true;
            }

            error = $"{CarmlTraceLevels.HttpHeader} '{explicitLevel}' is not a trace level; use none, application, model, framework or full.";
            level = CarmlTraceLevel.None;
            return false;
        }

        level = _default;
        if (level < CarmlTraceLevel.Application && IsSampledParent(request.Headers.TraceParent.ToString()))
        {
            level = CarmlTraceLevel.Application;
        }

        return true;
    }

    /// <summary>Whether a W3C traceparent (<c>00-&lt;trace&gt;-&lt;span&gt;-&lt;flags&gt;</c>) has the sampled flag.</summary>
    public static bool IsSampledParent(string traceParent) =>
        traceParent.Length >= 55 && traceParent[52] == '-' && traceParent.AsSpan(53, 2) is var flags
        && byte.TryParse(flags, System.Globalization.NumberStyles.HexNumber, null, out var value) && (value & 1) == 1;
}

/// <summary>
/// Per request, first in the pipeline: resolves the trace level, keeps or drops ASP.NET Core's request span by it,
/// puts the level in Orleans' RequestContext for the silo side, and answers the trace id of a traced request in
/// <c>Carml-Trace-Id</c> and <c>traceresponse</c>. Also names the protocol (http, grpc) for the request metrics.
/// </summary>
public sealed class GatewayTracingMiddleware(RequestDelegate next, GatewayTraceLevels levels)
{
    public Task InvokeAsync(HttpContext context)
    {
        var grpc = Security.AccessRules.IsGrpc(context.Request);
        InferenceMetrics.Protocol = grpc ? InferenceMetrics.Grpc : InferenceMetrics.Http;
        var valid = levels.TryResolve(context.Request, out var level, out var error);
        var activity = Activity.Current;
        if (!valid || level == CarmlTraceLevel.None)
        {
            if (activity is not null && activity.Recorded)
            {
                activity.ActivityTraceFlags &= ~ActivityTraceFlags.Recorded;
                activity.IsAllDataRequested = false;
            }

            return valid ? next(context) : RejectAsync(context, grpc, error!);
        }

        CarmlTraceLevels.SetCurrent(level);
        if (activity is { Recorded: true })
        {
            activity.SetTag(CarmlTelemetry.Attributes.TraceLevel, CarmlTraceLevels.Name(level));
            var traceId = activity.TraceId.ToHexString();
            context.Response.Headers[CarmlTraceLevels.TraceIdHeader] = traceId;
            context.Response.Headers["traceresponse"] = $"00-{traceId}-{activity.SpanId.ToHexString()}-01";
        }

        return next(context);
    }

    private static Task RejectAsync(HttpContext context, bool grpc, string error)
    {
        if (grpc)
        {
            // A trailers-only gRPC answer: HTTP 200 with the status in the headers, as gRPC clients expect.
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = ((int)StatusCode.InvalidArgument).ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers["grpc-message"] = Uri.EscapeDataString(error);
            return Task.CompletedTask;
        }

        return Results.Json(new KServeError(error), statusCode: StatusCodes.Status400BadRequest).ExecuteAsync(context);
    }
}

/// <summary>Adds <c>carml-trace-id</c> to the trailing metadata of a traced gRPC call, whether it succeeded or failed.</summary>
public sealed class TraceIdTrailerInterceptor : Interceptor
{
    public const string TrailerKey = "carml-trace-id";

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        finally
        {
            AddTraceId(context);
        }
    }

    private static void AddTraceId(ServerCallContext context)
    {
        // The request span is recorded exactly when the request is traced (its level, or one raised on the way).
        if (TracedRequest() is { } activity)
        {
            context.ResponseTrailers.Add(TrailerKey, activity.TraceId.ToHexString());
        }
    }

    private static Activity? TracedRequest() => Activity.Current is { Recorded: true } activity ? activity : null;
}

/// <summary>The KServe v2 request parameter <c>carml_trace_level</c> (gRPC), which may raise one request's level.</summary>
public static class TraceLevelParameter
{
    public static void Apply(Google.Protobuf.Collections.MapField<string, KServe.Grpc.InferParameter> parameters)
    {
        if (parameters.TryGetValue(CarmlTraceLevels.Parameter, out var parameter))
        {
            if (parameter.ParameterChoiceCase != KServe.Grpc.InferParameter.ParameterChoiceOneofCase.StringParam)
            {
                throw Interfaces.ModelException.InvalidArgument($"parameter '{CarmlTraceLevels.Parameter}' must be a string (none, application, model, framework, full).");
            }

            CarmlTraceLevels.Raise(CarmlTraceLevels.Parse(parameter.StringParam, $"parameter '{CarmlTraceLevels.Parameter}'"));
        }
    }
}

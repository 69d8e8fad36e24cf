using System.Diagnostics;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.Observability;

/// <summary>
/// The gateway's side of the inference metrics: requests by outcome, total time and requests in flight. The protocol
/// label is set per request by <see cref="GatewayTracingMiddleware"/>. A request for a model that does not resolve is
/// counted under model <c>_unresolved</c>, so clients cannot grow the label set with made-up names.
/// </summary>
public static class InferenceMetrics
{
    public const string Http = "http";
    public const string Grpc = "grpc";
    public const string Success = "success";
    public const string Unresolved = "_unresolved";

    private static readonly AsyncLocal<string?> CurrentProtocol = new();

    private static readonly Dictionary<ModelErrorKind, string> Outcomes = Enum.GetValues<ModelErrorKind>()
        .ToDictionary(kind => kind, kind => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(kind.ToString()));

    /// <summary>The protocol of the request being served: http or grpc (internal for work the gateway starts itself).</summary>
    public static string? Protocol
    {
        get => CurrentProtocol.Value;
        set => CurrentProtocol.Value = value;
    }

    /// <summary>Counts a request in; pass the result to <see cref="End"/>.</summary>
    public static long Begin()
    {
        CarmlTelemetry.InFlight.Add(1);
        return Stopwatch.GetTimestamp();
    }

    public static void End(long started, ModelRoute? route, Exception? error)
    {
        CarmlTelemetry.InFlight.Add(-1);
        var model = route?.Id.Name ?? Unresolved;
        var version = route?.Id.Version ?? string.Empty;
        var protocol = Protocol ?? "internal";
        CarmlTelemetry.Requests.Add(1, new TagList
        {
            { "model", model },
            { "version", version },
            { "protocol", protocol },
            { "outcome", Outcome(error) },
        });
        CarmlTelemetry.RequestSeconds.Record(
            Stopwatch.GetElapsedTime(started).TotalSeconds,
            new KeyValuePair<string, object?>("model", model),
            new KeyValuePair<string, object?>("version", version),
            new KeyValuePair<string, object?>("protocol", protocol));
    }

    /// <summary>success, the error kind in snake case (invalid_argument, not_found, ...), cancelled, or internal.</summary>
    public static string Outcome(Exception? error) => error switch
    {
        null => Success,
        _ when ErrorMapping.Classify(error) is { } known => Outcomes.GetValueOrDefault(known.Kind, "internal"),
        OperationCanceledException => "cancelled",
        _ => "internal",
    };
}

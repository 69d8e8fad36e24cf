using Orleans.Runtime;

namespace Carml.Orleans.Core.Telemetry;

/// <summary>
/// How deep a request is traced, after CarML's trace levels. Each level adds spans to the one before it:
/// <list type="bullet">
/// <item><see cref="None"/>: no spans from Carml (the request still gets an id in logs).</item>
/// <item><see cref="Application"/>: the gateway request, routing, run recording.</item>
/// <item><see cref="Model"/>: + the replica call (and Orleans' grain-call spans), batch queue wait, pre- and post-processing.</item>
/// <item><see cref="Framework"/>: + the ONNX Runtime run.</item>
/// <item><see cref="Full"/>: + per-tensor detail (input shapes and types, batch composition, per-input timings).</item>
/// </list>
/// </summary>
public enum CarmlTraceLevel
{
    None = 0,
    Application = 1,
    Model = 2,
    Framework = 3,
    Full = 4,
}

/// <summary>
/// Parsing and carrying of <see cref="CarmlTraceLevel"/>: the gateway reads it per request (HTTP header
/// <see cref="HttpHeader"/>, gRPC metadata <see cref="GrpcMetadataKey"/>, a predictor's trace_level option) and puts it
/// in Orleans' <see cref="RequestContext"/> under <see cref="RequestContextKey"/>, so the silo side (queue, inference)
/// decides from the request itself, never from a global switch.
/// </summary>
public static class CarmlTraceLevels
{
    public const string HttpHeader = "Carml-Trace-Level";
    public const string GrpcMetadataKey = "carml-trace-level";
    public const string RequestContextKey = "carml.trace_level";

    /// <summary>The KServe v2 request parameter that may raise the level of one inference request.</summary>
    public const string Parameter = "carml_trace_level";

    /// <summary>The response header (HTTP) and trailing metadata key (gRPC) that carry the trace id of a traced request.</summary>
    public const string TraceIdHeader = "Carml-Trace-Id";

    private static readonly string[] Names = ["none", "application", "model", "framework", "full"];

    public static string Name(CarmlTraceLevel level) => Names[(int)level];

    /// <summary>
    /// Parses a level name, in any case: <c>none</c>, <c>application</c>, <c>model</c>, <c>framework</c>, <c>full</c>, or
    /// CarML's spellings (<c>NO_TRACE</c>, <c>MODEL_TRACE</c>, ...). CarML's library and hardware levels map to full.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> text, out CarmlTraceLevel level)
    {
        text = text.Trim();
        if (text.EndsWith("_trace", StringComparison.OrdinalIgnoreCase))
        {
            text = text[..^"_trace".Length];
        }

        for (var i = 0; i < Names.Length; i++)
        {
            if (text.Equals(Names[i], StringComparison.OrdinalIgnoreCase))
            {
                level = (CarmlTraceLevel)i;
                return true;
            }
        }

        if (text.Equals("no", StringComparison.OrdinalIgnoreCase))
        {
            level = CarmlTraceLevel.None;
            return true;
        }

        if (text.Equals("library", StringComparison.OrdinalIgnoreCase) || text.Equals("hardware", StringComparison.OrdinalIgnoreCase))
        {
            level = CarmlTraceLevel.Full;
            return true;
        }

        level = CarmlTraceLevel.None;
        return false;
    }

    /// <summary>Parses a level or throws the client error that names the accepted values.</summary>
    public static CarmlTraceLevel Parse(string text, string source) =>
        TryParse(text, out var level)
            ? level
            : throw Interfaces.ModelException.InvalidArgument(
                $"{source} '{text}' is not a trace level; use one of {string.Join(", ", Names)}.");

    /// <summary>The level of the request being served (gateway or silo side); <see cref="CarmlTraceLevel.None"/> when unset.</summary>
    /// <remarks>
    /// Carried as the level's number, so reading it (several times per request) parses nothing; the name earlier
    /// versions carried is still read, so a level survives a rolling upgrade.
    /// </remarks>
    public static CarmlTraceLevel Current => RequestContext.Get(RequestContextKey) switch
    {
        int value when value > 0 && value <= (int)CarmlTraceLevel.Full => (CarmlTraceLevel)value,
        string name when TryParse(name, out var level) => level,
        _ => CarmlTraceLevel.None,
    };

    /// <summary>
    /// Raises the level of the request being served (a predictor's trace_level option, a request parameter): the level
    /// goes up for the rest of the request, and a request span that was dropped at level none is recorded after all.
    /// </summary>
    public static void Raise(CarmlTraceLevel level)
    {
        if (level <= Current)
        {
            return;
        }

        SetCurrent(level);
        if (System.Diagnostics.Activity.Current is { Recorded: false } request)
        {
            request.ActivityTraceFlags |= System.Diagnostics.ActivityTraceFlags.Recorded;
            request.IsAllDataRequested = true;
        }
    }

    /// <summary>Sets the level for the rest of this request, across grain calls; <see cref="CarmlTraceLevel.None"/> clears it.</summary>
    public static void SetCurrent(CarmlTraceLevel level)
    {
        if (level == CarmlTraceLevel.None)
        {
            RequestContext.Remove(RequestContextKey);
        }
        else
        {
            RequestContext.Set(RequestContextKey, (int)level);
        }
    }
}

using System.Diagnostics;
using Carml.Orleans.Core.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Carml.Orleans.Silo.Telemetry;

/// <summary>Where traces and metrics go. Section <c>Carml:Tracing</c>; OTLP also follows <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>.</summary>
public sealed class TracingOptions
{
    public const string Section = "Carml:Tracing";

    /// <summary>The level of requests that name none (header, gRPC metadata, predictor option): none, application, model, framework, full.</summary>
    public string DefaultLevel { get; set; } = "none";

    /// <summary>The <c>service.name</c> resource attribute; the process kind (gateway, silo) when empty.</summary>
    public string? ServiceName { get; set; }

    public ExporterEndpoint Otlp { get; set; } = new();

    public ExporterEndpoint Zipkin { get; set; } = new();

    public sealed class ExporterEndpoint
    {
        /// <summary>Collector address, e.g. <c>http://localhost:4317</c> (OTLP gRPC) or <c>http://localhost:9411/api/v2/spans</c> (Zipkin).</summary>
        public string? Endpoint { get; set; }

        /// <summary>
        /// OTLP only: <c>grpc</c> (port 4317) or <c>http/protobuf</c> (port 4318; give the base address, /v1/traces etc. are
        /// added). Unset: <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, else grpc.
        /// </summary>
        public string? Protocol { get; set; }
    }

    /// <summary>Configures one OTLP exporter of <paramref name="signal"/> (traces, metrics, logs) for this section's endpoint and protocol.</summary>
    public void ConfigureOtlp(OtlpExporterOptions exporter, string signal, string endpoint)
    {
        var protocol = Otlp.Protocol ?? Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_PROTOCOL") ?? "grpc";
        var http = string.Equals(protocol, "http/protobuf", StringComparison.OrdinalIgnoreCase);
        exporter.Protocol = http ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
        exporter.Endpoint = http ? new Uri(endpoint.TrimEnd('/') + "/v1/" + signal) : new Uri(endpoint);
    }

    /// <summary>The OTLP endpoint: this section's, else <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>; null when neither is set.</summary>
    public static string? OtlpEndpoint(IConfiguration configuration, TracingOptions options) =>
        !string.IsNullOrWhiteSpace(options.Otlp.Endpoint) ? options.Otlp.Endpoint
        : configuration["OTEL_EXPORTER_OTLP_ENDPOINT"] is { Length: > 0 } fromConfiguration ? fromConfiguration
        : Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 } fromEnvironment ? fromEnvironment
        : null;

    public CarmlTraceLevel ParsedDefaultLevel() =>
        CarmlTraceLevels.TryParse(DefaultLevel, out var level)
            ? level
            : throw new InvalidOperationException($"Carml:Tracing:DefaultLevel '{DefaultLevel}' is not a trace level (none, application, model, framework, full).");
}

/// <summary>
/// OpenTelemetry for a Carml process: traces from the <c>Carml.Orleans</c> source and Orleans' grain-call sources,
/// sampled per request by <see cref="CarmlTraceSampler"/>; metrics from the <c>Carml.Orleans</c> meter, Orleans' meter
/// and the .NET runtime. Exporters are added only when configured (OTLP, Zipkin), so by default spans are made only
/// for requests that ask for a trace level, and go nowhere but to the response's trace id and the run record.
/// </summary>
public static class CarmlOpenTelemetry
{
    /// <summary>Orleans' activity sources for grain calls (client side, and the called grain's side).</summary>
    public static readonly string[] OrleansSources = ["Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];

    public const string OrleansMeter = "Microsoft.Orleans";

    public static OpenTelemetryBuilder AddCarmlOpenTelemetry(this IServiceCollection services, IConfiguration configuration, string processKind)
    {
        var options = configuration.GetSection(TracingOptions.Section).Get<TracingOptions>() ?? new TracingOptions();
        services.AddOptions<TracingOptions>()
            .Bind(configuration.GetSection(TracingOptions.Section))
            .Validate(o => CarmlTraceLevels.TryParse(o.DefaultLevel, out _), "Carml:Tracing:DefaultLevel must be none, application, model, framework or full.")
            .Validate(o => o.Otlp.Endpoint is null or "" || Uri.TryCreate(o.Otlp.Endpoint, UriKind.Absolute, out _), "Carml:Tracing:Otlp:Endpoint must be an absolute URI.")
            .Validate(o => o.Otlp.Protocol is null or "grpc" or "http/protobuf", "Carml:Tracing:Otlp:Protocol must be grpc or http/protobuf.")
            .Validate(o => o.Zipkin.Endpoint is null or "" || Uri.TryCreate(o.Zipkin.Endpoint, UriKind.Absolute, out _), "Carml:Tracing:Zipkin:Endpoint must be an absolute URI.")
            .ValidateOnStart();
        var otlp = TracingOptions.OtlpEndpoint(configuration, options);
        var zipkin = string.IsNullOrWhiteSpace(options.Zipkin.Endpoint) ? null : options.Zipkin.Endpoint;

        return services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(
                string.IsNullOrWhiteSpace(options.ServiceName) ? $"carml-{processKind}" : options.ServiceName,
                serviceInstanceId: Environment.MachineName + "/" + Environment.ProcessId))
            .WithTracing(tracing =>
            {
                tracing.SetSampler(new CarmlTraceSampler());
                tracing.AddSource(CarmlTelemetry.Name);
                tracing.AddSource(OrleansSources);
                if (otlp is not null)
                {
                    tracing.AddOtlpExporter(o => options.ConfigureOtlp(o, "traces", otlp));
                }

                if (zipkin is not null)
                {
                    // Deprecated upstream in favour of OTLP, still the simplest way to a plain Zipkin server (issue 7 asks for it).
#pragma warning disable CS0618
                    tracing.AddZipkinExporter(o => o.Endpoint = new Uri(zipkin));
#pragma warning restore CS0618
                }
            })
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(CarmlTelemetry.Name, OrleansMeter);
                metrics.AddRuntimeInstrumentation();
                if (otlp is not null)
                {
                    metrics.AddOtlpExporter(o => options.ConfigureOtlp(o, "metrics", otlp));
                }
            });
    }
}

/// <summary>
/// Samples by the request's trace level, never by a global rate. A root or remote-parented span is sampled only when it
/// is ASP.NET Core's request span (the gateway then keeps or drops it by the request's level); a local child follows
/// its parent, except that Orleans' grain-call spans need level model and Carml's spans decide their own level before
/// they start. Background grain calls (timers, start-up) have no request span above them and are not traced.
/// </summary>
public sealed class CarmlTraceSampler : Sampler
{
    /// <summary>The name ASP.NET Core gives its request activity.</summary>
    public const string AspNetCoreRequest = "Microsoft.AspNetCore.Hosting.HttpRequestIn";

    private static readonly SamplingResult Sample = new(SamplingDecision.RecordAndSample);
    private static readonly SamplingResult Drop = new(SamplingDecision.Drop);

    public override SamplingResult ShouldSample(in SamplingParameters samplingParameters)
    {
        var parent = samplingParameters.ParentContext;
        if (parent.TraceId == default || parent.IsRemote)
        {
            // A silo's side of a grain call has a remote parent too: the level came along in the RequestContext.
            return samplingParameters.Name == AspNetCoreRequest || CarmlTraceLevels.Current >= CarmlTraceLevel.Model
                ? Sample
                : Drop;
        }

        if ((parent.TraceFlags & ActivityTraceFlags.Recorded) == 0)
        {
            return Drop;
        }

        // Carml's own spans are started only at their level; anything else under a traced request (Orleans' grain calls)
        // belongs to level model.
        return samplingParameters.Name.StartsWith("carml.", StringComparison.Ordinal) || CarmlTraceLevels.Current >= CarmlTraceLevel.Model
            ? Sample
            : Drop;
    }
}

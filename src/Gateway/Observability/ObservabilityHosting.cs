using System.Net;
using Carml.Orleans.Core;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Silo;
using Carml.Orleans.Silo.Telemetry;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using OpenTelemetry.Instrumentation.AspNetCore;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Carml.Orleans.Gateway.Observability;

/// <summary>Log output. Section <c>Carml:Logging</c>.</summary>
public sealed class LoggingFormatOptions
{
    public const string Section = "Carml:Logging";

    /// <summary><c>text</c> (default, the console's simple format) or <c>json</c> (one JSON object per line, with scopes: trace and span ids).</summary>
    public string Format { get; set; } = "text";
}

/// <summary>The dedicated metrics listener, when there is one (<see cref="GatewayOptions.MetricsPort"/> not -1).</summary>
public sealed record MetricsEndpoint(Uri? Uri);

/// <summary>
/// The gateway's observability wiring: OpenTelemetry traces and metrics (<see cref="CarmlOpenTelemetry"/> plus ASP.NET
/// Core's), the per-request trace level, the Prometheus endpoint on the HTTP port and the metrics port, the gRPC health
/// service, logs with trace ids (JSON on request), and the Orleans Dashboard when enabled.
/// </summary>
public static class ObservabilityHosting
{
    public const string MetricsPath = "/metrics";

    public static void AddCarmlObservability(this WebApplicationBuilder builder, IPAddress host, GatewayOptions options)
    {
        var configuration = builder.Configuration;
        builder.Logging.Configure(o => o.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);
        var logging = configuration.GetSection(LoggingFormatOptions.Section).Get<LoggingFormatOptions>() ?? new LoggingFormatOptions();
        if (string.Equals(logging.Format, "json", StringComparison.OrdinalIgnoreCase))
        {
            builder.Logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else if (!string.Equals(logging.Format, "text", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"Carml:Logging:Format '{logging.Format}' is not text or json.");
        }

        builder.Services.AddSingleton<GatewayTraceLevels>();
        builder.Services.AddSingleton<GatewayHealth>();
        builder.Services.AddSingleton<TraceIdTrailerInterceptor>();
        builder.Services.Configure<GrpcServiceOptions>(grpc => grpc.Interceptors.Add<TraceIdTrailerInterceptor>());
        builder.Services.AddOptions<AspNetCoreTraceInstrumentationOptions>()
            .Configure<GatewayTraceLevels>((aspNetCore, levels) =>
            {
                // Requests at level none, and those refused for an invalid level, are not recorded at all (the
                // middleware makes sure of it too).
                aspNetCore.Filter = context => levels.TryResolve(context.Request, out var level, out _) && level > CarmlTraceLevel.None;
                aspNetCore.RecordException = true;
            });

        var telemetry = builder.Services.AddCarmlOpenTelemetry(configuration, "gateway")
            .WithTracing(tracing => tracing.AddAspNetCoreInstrumentation())
            .WithMetrics(metrics => metrics.AddAspNetCoreInstrumentation().AddPrometheusExporter());
        var tracing = configuration.GetSection(TracingOptions.Section).Get<TracingOptions>() ?? new TracingOptions();
        if (TracingOptions.OtlpEndpoint(configuration, tracing) is { } otlp)
        {
            // Logs go to the collector too, with the trace and span of the request that wrote them.
            telemetry.WithLogging(logs => logs.AddOtlpExporter(o => tracing.ConfigureOtlp(o, "logs", otlp)));
        }

        builder.Services.AddGrpcHealthChecks(o =>
        {
            o.Services.Map(string.Empty, _ => true);
            o.Services.Map("inference.GRPCInferenceService", _ => true);
        }).AddCheck<GatewayHealthCheck>("carml");

        Uri? metricsUri = null;
        if (options.MetricsPort >= 0)
        {
            var port = FreePort.Resolve(options.MetricsPort);
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(host, port, listen => listen.Protocols = HttpProtocols.Http1));
            metricsUri = new Uri($"http://{(host.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{host}]" : host.ToString())}:{port}");
        }

        builder.Services.AddSingleton(new MetricsEndpoint(metricsUri));
    }

    /// <summary>First in the pipeline: the metrics port answers only <c>/metrics</c>; every request gets its trace level.</summary>
    public static void UseCarmlObservability(this WebApplication app)
    {
        if (app.Services.GetRequiredService<MetricsEndpoint>().Uri is { } metrics)
        {
            var port = metrics.Port;
            app.Use((context, next) =>
                context.Connection.LocalPort == port && !context.Request.Path.StartsWithSegments(MetricsPath)
                    ? Results.NotFound().ExecuteAsync(context)
                    : next(context));
        }

        app.UseMiddleware<GatewayTracingMiddleware>();
    }

    /// <summary>Maps <c>/metrics</c>, the gRPC health service and (when enabled) the Orleans Dashboard.</summary>
    public static void MapCarmlObservability(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint(MetricsPath);
        app.MapGrpcHealthChecksService();
        app.MapCarmlDashboard();
    }
}

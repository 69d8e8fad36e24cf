using Scalar.AspNetCore;
using Carml.Orleans.Core;
using System.Net;
using System.Text.Json;
using Carml.Orleans.Gateway.Cluster;
using Carml.Orleans.Gateway.KServe;
using Carml.Orleans.Gateway.Management;
using Carml.Orleans.Gateway.Observability;
using Carml.Orleans.Gateway.Predictor;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Gateway.Security;
using Carml.Orleans.Gateway.Standalone;
using Carml.Orleans.Gateway.Uploads;
using Carml.Orleans.Grains;
using Carml.Orleans.Silo;
using Carml.Orleans.Transfers;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Carml.Orleans.Gateway;

/// <summary>
/// Builds the gateway: Kestrel with an HTTP/1.1 port (KServe v2 HTTP, management API, OpenAPI) and a cleartext
/// HTTP/2 port (KServe v2 gRPC), in front of an in-process silo (standalone mode) or, with <c>Carml:Mode=cluster</c>,
/// as an Orleans client of silos found through Consul.
/// </summary>
public static class GatewayHost
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // Content root is the application directory so appsettings.json is found wherever the command is run from;
        // relative data paths (Carml:Silo:DataDirectory) still resolve against the working directory.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        configure?.Invoke(builder);

        builder.Services.AddOptions<GatewayOptions>()
            .Bind(builder.Configuration.GetSection(GatewayOptions.Section))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        var options = builder.Configuration.GetSection(GatewayOptions.Section).Get<GatewayOptions>() ?? new GatewayOptions();
        var host = IPAddress.TryParse(options.Host, out var address)
            ? address
            : throw new InvalidOperationException($"Carml:Gateway:Host '{options.Host}' is not an IP address (use 127.0.0.1, 0.0.0.0 or ::).");
        var httpPort = FreePort.Resolve(options.HttpPort);
        var grpcPort = FreePort.Resolve(options.GrpcPort);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            kestrel.Listen(host, httpPort, listen => listen.Protocols = HttpProtocols.Http1);
            kestrel.Listen(host, grpcPort, listen => listen.Protocols = HttpProtocols.Http2);
        });
        builder.AddCarmlObservability(host, options);
        builder.Services.AddSingleton(new GatewayEndpoints(new Uri($"http://{Format(host)}:{httpPort}"), new Uri($"http://{Format(host)}:{grpcPort}")));

        if (CarmlModeConfiguration.Read(builder.Configuration) == CarmlMode.Cluster)
        {
            builder.UseCarmlClusterClient();
        }
        else
        {
            builder.UseOrleans(silo => silo.UseCarmlStandalone(builder.Configuration));
        }

        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            json.SerializerOptions.DictionaryKeyPolicy = null;
            json.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
        });
        builder.Services.AddProblemDetails();
        // Binding failures (malformed JSON, a non-numeric page_size) throw, so ApiErrorMiddleware answers them with
        // the same problem details as every other client mistake instead of an empty 400.
        builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddOpenApi();
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = options.MaxRequestBytes;
            grpc.MaxSendMessageSize = options.MaxRequestBytes;
            grpc.Interceptors.Add<GrpcErrorInterceptor>();
            // Without this, gRPC maps a catch-all POST {service}/{method} route for unknown services. It matches every
            // two-segment REST path (POST /api/evaluations), so a REST POST with no body or a non-JSON Content-Type fell
            // through to it and answered an empty 404 instead of 415. An unknown gRPC service still reads UNIMPLEMENTED
            // to gRPC clients (HTTP 404 maps to it); unknown methods of our services keep their UNIMPLEMENTED endpoints.
            grpc.IgnoreUnknownServices = true;
        });
        builder.Services.AddSingleton<GrpcErrorInterceptor>(); // one instance, not one per call
        builder.Services.AddGrpcReflection();
        builder.AddCarmlSecurity(host); // Carml:Auth, Carml:Limits: authentication, authorization, rate limits
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddModelRouting();
        builder.Services.AddOptions<RunRecorderOptions>()
            .Bind(builder.Configuration.GetSection(RunRecorderOptions.Section))
            .Validate(o => o.SampleRate is >= 0 and <= 1 && o.BufferSize > 0 && o.BatchSize > 0, "Carml:Runs: SampleRate in [0, 1], BufferSize and BatchSize positive.")
            .ValidateOnStart();
        builder.Services.AddSingleton<RunRecorder>();
        builder.Services.AddHostedService<RunRecorderService>();
        builder.Services.AddSingleton<ModelSourceResolver>();
        builder.Services.AddOptions<ArchiveLimits>().Bind(builder.Configuration.GetSection("Carml:Archives"));
        var dataDirectory = builder.Configuration.GetSection(CarmlSiloOptions.Section).Get<CarmlSiloOptions>()?.DataDirectory ?? new CarmlSiloOptions().DataDirectory;
        builder.Services.AddOptions<DownloadOptions>()
            .Configure(o => o.CacheDirectory = Path.Combine(Path.GetFullPath(dataDirectory), "downloads"))
            .Bind(builder.Configuration.GetSection(DownloadOptions.Section))
            .Validate(o => o.MaxBytes > 0 && o.Attempts > 0 && o.CacheExpiry >= TimeSpan.Zero, "Carml:Downloads: MaxBytes and Attempts must be positive, CacheExpiry not negative.")
            .ValidateOnStart();
        // One manager for the process: its per-URL locks are what let concurrent fetches of a URL share the work.
        builder.Services.AddHttpClient(nameof(DownloadManager), client => client.Timeout = TimeSpan.FromMinutes(30));
        builder.Services.AddSingleton(sp => ActivatorUtilities.CreateInstance<DownloadManager>(
            sp, sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(DownloadManager))));
        builder.Services.AddSingleton<ServerReadiness>();
        builder.Services.AddSingleton<KServeServer>();
        builder.Services.AddOptions<SampleModelOptions>().Bind(builder.Configuration.GetSection(SampleModelOptions.Section));
        builder.Services.AddPredictorApi();
        builder.Services.AddHostedService<StandaloneStartup>();
        builder.Services.AddHostedService<UploadPurgeService>();

        var app = builder.Build();
        app.UseCarmlObservability();
        app.UseMiddleware<ApiErrorMiddleware>();
        app.UseMiddleware<RequestSizeLimitMiddleware>();
        app.UseHttpMethodOverride(); // tus clients behind proxies that block PATCH/DELETE send X-HTTP-Method-Override
        app.UseRouting();
        app.UseCarmlSecurity();
        app.MapKServeHttp();
        app.MapModelManagement();
        app.MapTusUploads();
        app.MapDatasets();
        app.MapPredictors();
        app.MapRuns();
        app.MapAgents();
        app.MapHealth();
        app.MapGrpcService<KServeGrpcService>();
        app.MapGrpcService<PredictorGrpcService>();
        app.MapGrpcReflectionService();
        app.MapOpenApi();
        app.MapScalarApiReference("/docs"); // a browsable page over /openapi/v1.json
        app.MapCarmlObservability();
        return app;
    }

    private static string Format(IPAddress address) =>
        address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
}

/// <summary>The addresses the gateway listens on, after free ports were picked.</summary>
public sealed record GatewayEndpoints(Uri Http, Uri Grpc);

using System.ComponentModel.DataAnnotations;
using Carml.Orleans.Core;
using Carml.Orleans.Grains;
using Carml.Orleans.Grains.Agents;
using Carml.Orleans.Registry;
using Carml.Orleans.Registry.Catalog;
using Carml.Orleans.Registry.Consul;
using Carml.Orleans.Silo;
using Carml.Orleans.Silo.Telemetry;
using Carml.Orleans.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Carml.Orleans.Gateway.Cluster;

/// <summary>How the gateway joins a cluster as an Orleans client. Section <c>Carml:Cluster</c>.</summary>
public sealed class ClusterClientOptions
{
    public const string Section = "Carml:Cluster";

    /// <summary>How long the gateway keeps trying to connect to the silos at start before it gives up.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long a grain call (an inference try) waits for its answer before it fails with a timeout, which the router
    /// treats as "the silo is gone" and retries elsewhere. Orleans' default; shorten it where inference is known to be fast.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the gateway re-reads the silos' client endpoints from Consul (dead ones are dropped at once on connection loss).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan GatewayListRefreshPeriod { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// Cluster mode for the gateway: instead of hosting a silo it is an Orleans client that finds the silos' gateways in
/// Consul, registers itself as <c>carml-gateway</c> in the catalog, publishes the models in the registry, and shares the
/// silos' content store directory.
/// </summary>
public static class ClusterModeGateway
{
    public static void UseCarmlClusterClient(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var silo = configuration.GetSection(CarmlSiloOptions.Section).Get<CarmlSiloOptions>() ?? new CarmlSiloOptions();
        builder.Services.AddOptions<ClusterClientOptions>().Bind(configuration.GetSection(ClusterClientOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<ClusterConnectionRetryFilter>();
        builder.UseOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(cluster =>
            {
                cluster.ClusterId = silo.ClusterId;
                cluster.ServiceId = silo.ServiceId;
            });
            client.UseConsulClustering(configuration);
            client.ConfigureFailureDetection();
            client.Services.AddSingleton<IClientConnectionRetryFilter>(sp => sp.GetRequiredService<ClusterConnectionRetryFilter>());
            client.AddCarmlObservability(configuration);
        });

        // Files land where the silos read them (interim: a shared directory; see docs/consul.md). The gateway needs the
        // stores its endpoints use (content, uploads, runs) over the same files as the silos; it does not register the
        // silo-only services (agent publisher, ONNX Runtime settings).
        var dataDirectory = Path.GetFullPath(silo.DataDirectory);
        builder.Services.Configure<ContentStoreOptions>(o => o.Root = Path.Combine(dataDirectory, "artifacts"));
        builder.Services.Configure<UploadOptions>(o => o.Root = Path.Combine(dataDirectory, "uploads"));
        builder.Services.TryAddContentStore(configuration);
        builder.Services.TryAddUploadStore(configuration);
        builder.Services.TryAddKeyedSingleton(UploadOptions.ClockKey, TimeProvider.System);
        builder.Services.AddOptions<AgentOptions>().Bind(configuration.GetSection(AgentOptions.Section));
        builder.Services.AddSingleton(ClusterStorage.CreateRunStore(configuration, dataDirectory));
        builder.Services.AddConsulRegistry(configuration);
        builder.Services.AddCarmlServiceCatalog(configuration, Describe, sp => sp.GetRequiredService<Observability.GatewayHealth>().IsHealthyNow());
        builder.Services.AddHostedService<ModelRegistryPublisher>();
    }

    private static AgentServiceRegistration Describe(IServiceProvider services)
    {
        var endpoints = services.GetRequiredService<GatewayEndpoints>();
        var catalog = services.GetRequiredService<IOptions<ServiceCatalogOptions>>().Value;
        var tags = new List<string> { "kserve-v2", "http", "grpc" };
        tags.AddRange(catalog.Tags);
        var address = string.IsNullOrWhiteSpace(catalog.AdvertisedAddress) ? endpoints.Http.Host : catalog.AdvertisedAddress;
        return new AgentServiceRegistration
        {
            ID = $"{ServiceCatalogOptions.GatewayServiceName}-{address}-{endpoints.Http.Port}".Replace(':', '-'),
            Name = ServiceCatalogOptions.GatewayServiceName,
            Address = address,
            Port = endpoints.Http.Port,
            Tags = tags,
            Meta = new Dictionary<string, string>
            {
                ["http_url"] = endpoints.Http.ToString(),
                ["grpc_url"] = endpoints.Grpc.ToString(),
                ["grpc_port"] = endpoints.Grpc.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        };
    }
}

/// <summary>Keeps retrying the first connection to the silos for <see cref="ClusterClientOptions.ConnectTimeout"/>.</summary>
public sealed partial class ClusterConnectionRetryFilter(IOptions<ClusterClientOptions> options, ILogger<ClusterConnectionRetryFilter> logger) : IClientConnectionRetryFilter
{
    private readonly long _started = TimeProvider.System.GetTimestamp();
    private int _attempts;

    public async Task<bool> ShouldRetryConnectionAttempt(Exception exception, CancellationToken cancellationToken)
    {
        if (exception is ConsulAclException || TimeProvider.System.GetElapsedTime(_started) > options.Value.ConnectTimeout)
        {
            return false;
        }

        LogRetrying(logger, ++_attempts, exception.Message);
        await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        return true;
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Warning, Message = "No silo reachable yet (attempt {Attempt}): {Reason}")]
    private static partial void LogRetrying(ILogger logger, int attempt, string reason);
}

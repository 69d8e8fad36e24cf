using System.Net;
using Carml.Orleans.Core;
using Carml.Orleans.Grains;
using Carml.Orleans.Grains.Agents;
using Carml.Orleans.Grains.Placement;
using Carml.Orleans.Registry;
using Carml.Orleans.Registry.Catalog;
using Carml.Orleans.Silo.Telemetry;
using Carml.Orleans.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;

namespace Carml.Orleans.Silo;

public static class CarmlSiloBuilderExtensions
{
    /// <summary>
    /// Configures a single-host silo: localhost clustering, the embedded SQLite grain store and the content store under
    /// the data directory, and the model grains' services.
    /// </summary>
    public static ISiloBuilder UseCarmlStandalone(this ISiloBuilder silo, IConfiguration configuration)
    {
        var (options, dataDirectory) = ReadOptions(configuration);
        silo.UseLocalhostClustering(
            siloPort: FreePort.Resolve(options.SiloPort),
            gatewayPort: FreePort.Resolve(options.GatewayPort),
            serviceId: options.ServiceId,
            clusterId: options.ClusterId);
        silo.AddSqliteGrainStorage(StorageNames.Models, o => o.DatabasePath = Path.Combine(dataDirectory, "carml.db"));
        silo.Services.AddSingleton<IRunStore>(new SqliteRunStore(Path.Combine(dataDirectory, "runs.db")));
        return silo.AddCarmlSiloServices(configuration, dataDirectory);
    }

    /// <summary>
    /// Configures a silo of a cluster: membership in Consul (<c>Carml:Consul</c>), the <c>carml-silo</c> catalog entry,
    /// endpoints on <see cref="CarmlSiloOptions.AdvertisedAddress"/>, and the model grains' services. Grain state and run
    /// records go to PostgreSQL when <c>Carml:Postgres:ConnectionString</c> is set (see <see cref="ClusterStorage"/>);
    /// otherwise to SQLite files in the shared <see cref="CarmlSiloOptions.DataDirectory"/> (one host only). Model files
    /// and uploads are in that directory either way, so it must be shared storage across hosts.
    /// </summary>
    public static ISiloBuilder UseCarmlCluster(this ISiloBuilder silo, IConfiguration configuration)
    {
        var (options, dataDirectory) = ReadOptions(configuration);
        if (!IPAddress.TryParse(options.AdvertisedAddress, out var advertised))
        {
            throw new InvalidOperationException($"Carml:Silo:AdvertisedAddress '{options.AdvertisedAddress}' is not an IP address.");
        }

        silo.Configure<ClusterOptions>(cluster =>
        {
            cluster.ClusterId = options.ClusterId;
            cluster.ServiceId = options.ServiceId;
        });
        silo.ConfigureEndpoints(advertised, FreePort.Resolve(options.SiloPort), FreePort.Resolve(options.GatewayPort), options.ListenOnAnyHostAddress);
        silo.UseConsulClustering(configuration);
        silo.ConfigureFailureDetection(configuration);
        silo.Services.AddConsulRegistry(configuration);
        silo.Services.AddCarmlSiloCatalog(configuration);

        // The catalog entry shows the GPUs the agent detector finds (tag "gpu", meta gpu_count) unless configured.
        silo.Services.AddOptions<ServiceCatalogOptions>().PostConfigure<HardwareDetector>((catalog, detector) =>
        {
            if (catalog.GpuCount == 0)
            {
                catalog.GpuCount = detector.Gpus.Count;
            }
        });
        silo.AddClusterGrainStorage(configuration, dataDirectory);
        silo.Services.AddSingleton(ClusterStorage.CreateRunStore(configuration, dataDirectory));
        return silo.AddCarmlSiloServices(configuration, dataDirectory);
    }

    /// <summary>The silo options and the data directory (made absolute and created).</summary>
    private static (CarmlSiloOptions Options, string DataDirectory) ReadOptions(IConfiguration configuration)
    {
        var options = configuration.GetSection(CarmlSiloOptions.Section).Get<CarmlSiloOptions>() ?? new CarmlSiloOptions();
        var dataDirectory = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(dataDirectory);
        return (options, dataDirectory);
    }

    /// <summary>What every silo runs whatever its mode: model files and uploads under the data directory, the grains'
    /// services, capability metadata and observability.</summary>
    private static ISiloBuilder AddCarmlSiloServices(this ISiloBuilder silo, IConfiguration configuration, string dataDirectory)
    {
        silo.Services.Configure<ContentStoreOptions>(o => o.Root = Path.Combine(dataDirectory, "artifacts"));
        silo.Services.Configure<UploadOptions>(o => o.Root = Path.Combine(dataDirectory, "uploads"));
        silo.Services.AddCarmlGrainServices(configuration);
        silo.UseCarmlSiloMetadata(configuration);
        silo.AddCarmlObservability(configuration);
        return silo;
    }
}

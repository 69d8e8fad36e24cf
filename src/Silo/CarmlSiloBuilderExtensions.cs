using Carml.Orleans.Core;
using Carml.Orleans.Grains;
using Carml.Orleans.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Carml.Orleans.Silo;

public static class CarmlSiloBuilderExtensions
{
    /// <summary>
    /// Configures a single-host silo: localhost clustering, the embedded SQLite grain store and the content store under
    /// the data directory, and the model grains' services.
    /// </summary>
    public static ISiloBuilder UseCarmlStandalone(this ISiloBuilder silo, IConfiguration configuration)
    {
        var options = configuration.GetSection(CarmlSiloOptions.Section).Get<CarmlSiloOptions>() ?? new CarmlSiloOptions();
        var dataDirectory = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(dataDirectory);

        silo.UseLocalhostClustering(
            siloPort: FreePort.Resolve(options.SiloPort),
            gatewayPort: FreePort.Resolve(options.GatewayPort),
            serviceId: options.ServiceId,
            clusterId: options.ClusterId);
        silo.AddSqliteGrainStorage(StorageNames.Models, o => o.DatabasePath = Path.Combine(dataDirectory, "carml.db"));
        silo.Services.Configure<ContentStoreOptions>(o => o.Root = Path.Combine(dataDirectory, "artifacts"));
        silo.Services.Configure<UploadOptions>(o => o.Root = Path.Combine(dataDirectory, "uploads"));
        silo.Services.AddCarmlGrainServices(configuration);
        silo.Services.AddSingleton<IRunStore>(new SqliteRunStore(Path.Combine(dataDirectory, "runs.db")));
        return silo;
    }
}

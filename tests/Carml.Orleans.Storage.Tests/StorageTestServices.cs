using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.Serialization;
using Orleans.Serialization.Serializers;

namespace Carml.Orleans.Storage.Tests;

/// <summary>The Orleans serializer and activators a provider needs outside a silo, built once for all tests.</summary>
internal static class StorageTestServices
{
    private static readonly Lazy<ServiceProvider> Services = new(() => new ServiceCollection()
        .AddSerializer(serializer => serializer.AddAssembly(typeof(StorageTestServices).Assembly))
        .BuildServiceProvider());

    public static SqliteGrainStorage CreateStorage(string databasePath, Action<SqliteGrainStorageOptions>? configure = null)
    {
        var options = new SqliteGrainStorageOptions { DatabasePath = databasePath };
        configure?.Invoke(options);
        return new SqliteGrainStorage(
            "store",
            options,
            Services.Value.GetRequiredService<Serializer>(),
            Services.Value.GetRequiredService<IActivatorProvider>(),
            TimeProvider.System,
            NullLogger<SqliteGrainStorage>.Instance);
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Hosting;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;

namespace Carml.Orleans.Storage.Tests;

public sealed class SqliteGrainStorageRegistrationTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Options_without_a_database_path_fail_validation_naming_the_option()
    {
        var result = new SqliteGrainStorageOptionsValidator().Validate("store", new SqliteGrainStorageOptions());

        Assert.True(result.Failed);
        Assert.Contains("DatabasePath is required", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("'store'", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_whose_directory_cannot_be_created_fail_validation_naming_the_directory()
    {
        var blockingFile = _directory.PathOf("not-a-directory");
        File.WriteAllText(blockingFile, "a file where a directory should be");
        var options = new SqliteGrainStorageOptions { DatabasePath = Path.Combine(blockingFile, "sub", "grains.db") };

        var result = new SqliteGrainStorageOptionsValidator().Validate("store", options);

        Assert.True(result.Failed);
        Assert.Contains("could not be created", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(blockingFile, "sub"), result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_pointing_at_an_existing_directory_or_an_in_memory_database_fail_validation()
    {
        var validator = new SqliteGrainStorageOptionsValidator();

        Assert.True(validator.Validate("store", new SqliteGrainStorageOptions { DatabasePath = _directory.FullPath }).Failed);
        Assert.True(validator.Validate("store", new SqliteGrainStorageOptions { DatabasePath = ":memory:" }).Failed);
        Assert.True(validator.Validate("store", new SqliteGrainStorageOptions { DatabasePath = _directory.PathOf("a.db"), BusyTimeout = TimeSpan.Zero }).Failed);
    }

    [Fact]
    public void Valid_options_pass_validation_and_their_directory_is_created()
    {
        var databasePath = _directory.PathOf(Path.Combine("data", "grains.db"));

        var result = new SqliteGrainStorageOptionsValidator().Validate("store", new SqliteGrainStorageOptions { DatabasePath = databasePath });

        Assert.True(result.Succeeded);
        Assert.True(Directory.Exists(_directory.PathOf("data")));
    }

    [Fact]
    public void An_invalid_path_is_reported_by_startup_validation()
    {
        var services = new ServiceCollection();
        new ServiceCollectionSiloBuilder(services).AddSqliteGrainStorage("store", options => options.DatabasePath = " ");
        using var provider = services.BuildServiceProvider();

        var exception = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("DatabasePath is required", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_named_provider_is_registered_as_a_keyed_grain_storage_and_a_silo_lifecycle_participant()
    {
        var databasePath = _directory.PathOf("grains.db");
        var services = NewSiloServices();
        new ServiceCollectionSiloBuilder(services).AddSqliteGrainStorage("store", options => options.DatabasePath = databasePath);
        using var provider = services.BuildServiceProvider();

        var storage = Assert.IsType<SqliteGrainStorage>(provider.GetRequiredKeyedService<IGrainStorage>("store"));

        Assert.Equal("store", storage.Name);
        Assert.Equal(databasePath, storage.DatabasePath);
        Assert.Contains(storage, provider.GetServices<ILifecycleParticipant<ISiloLifecycle>>());
        Assert.Null(provider.GetService<IGrainStorage>());
    }

    [Fact]
    public void The_default_provider_is_also_the_unkeyed_grain_storage_and_can_be_bound_from_configuration()
    {
        var databasePath = _directory.PathOf("default.db");
        var services = NewSiloServices();
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Storage:DatabasePath"] = databasePath,
                ["Storage:DeleteStateOnClear"] = "false",
            })
            .Build();
        services.AddSingleton<IConfiguration>(configuration);
        new ServiceCollectionSiloBuilder(services).AddSqliteGrainStorageAsDefault(options => options.BindConfiguration("Storage"));
        using var provider = services.BuildServiceProvider();

        var storage = Assert.IsType<SqliteGrainStorage>(provider.GetRequiredService<IGrainStorage>());

        Assert.Same(storage, provider.GetRequiredKeyedService<IGrainStorage>("Default"));
        Assert.Equal(databasePath, storage.DatabasePath);
        Assert.False(provider.GetRequiredService<IOptionsMonitor<SqliteGrainStorageOptions>>().Get("Default").DeleteStateOnClear);
    }

    private static ServiceCollection NewSiloServices()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSerializer();
        return services;
    }

    private sealed class ServiceCollectionSiloBuilder(IServiceCollection services) : ISiloBuilder
    {
        public IServiceCollection Services { get; } = services;

        public IConfiguration Configuration { get; } = new ConfigurationBuilder().Build();
    }
}

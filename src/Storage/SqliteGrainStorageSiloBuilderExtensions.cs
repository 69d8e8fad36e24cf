using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Providers;
using Orleans.Runtime.Hosting;

namespace Carml.Orleans.Storage;

/// <summary>Registers <see cref="SqliteGrainStorage"/> providers on a silo.</summary>
public static class SqliteGrainStorageSiloBuilderExtensions
{
    /// <summary>Adds SQLite grain storage as the default provider (the one used when a grain names no provider).</summary>
    public static ISiloBuilder AddSqliteGrainStorageAsDefault(this ISiloBuilder builder, Action<SqliteGrainStorageOptions> configureOptions)
        => builder.AddSqliteGrainStorage(ProviderConstants.DEFAULT_STORAGE_PROVIDER_NAME, configureOptions);

    /// <summary>Adds SQLite grain storage as the default provider, configured through an options builder (e.g. <c>BindConfiguration</c>).</summary>
    public static ISiloBuilder AddSqliteGrainStorageAsDefault(this ISiloBuilder builder, Action<OptionsBuilder<SqliteGrainStorageOptions>>? configureOptions = null)
        => builder.AddSqliteGrainStorage(ProviderConstants.DEFAULT_STORAGE_PROVIDER_NAME, configureOptions);

    /// <summary>Adds a SQLite grain storage provider under <paramref name="name"/>.</summary>
    /// <param name="builder">The silo builder.</param>
    /// <param name="name">Provider name; grains refer to it in <c>[PersistentState(stateName, name)]</c>.</param>
    /// <param name="configureOptions">Sets the options, at least <see cref="SqliteGrainStorageOptions.DatabasePath"/>.</param>
    public static ISiloBuilder AddSqliteGrainStorage(this ISiloBuilder builder, string name, Action<SqliteGrainStorageOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(configureOptions);
        return builder.AddSqliteGrainStorage(name, optionsBuilder => optionsBuilder.Configure(configureOptions));
    }

    /// <summary>Adds a SQLite grain storage provider under <paramref name="name"/>, configured through an options builder.</summary>
    public static ISiloBuilder AddSqliteGrainStorage(this ISiloBuilder builder, string name, Action<OptionsBuilder<SqliteGrainStorageOptions>>? configureOptions = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSqliteGrainStorage(name, configureOptions);
        return builder;
    }

    /// <summary>
    /// Adds a SQLite grain storage provider under <paramref name="name"/> to a silo's services: named options validated on start,
    /// a keyed <see cref="global::Orleans.Storage.IGrainStorage"/> singleton, and its silo lifecycle participant.
    /// </summary>
    public static IServiceCollection AddSqliteGrainStorage(this IServiceCollection services, string name, Action<OptionsBuilder<SqliteGrainStorageOptions>>? configureOptions = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);

        var optionsBuilder = services.AddOptions<SqliteGrainStorageOptions>(name);
        configureOptions?.Invoke(optionsBuilder);
        optionsBuilder.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SqliteGrainStorageOptions>, SqliteGrainStorageOptionsValidator>());
        services.ConfigureNamedOptionForLogging<SqliteGrainStorageOptions>(name);
        services.TryAddSingleton(TimeProvider.System);

        // Keyed IGrainStorage by name, the unkeyed default when name is "Default", and the lifecycle participant.
        return services.AddGrainStorage(name, SqliteGrainStorage.Create);
    }
}

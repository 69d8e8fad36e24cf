using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;

namespace Carml.Orleans.Persistence;

/// <summary>PostgreSQL for cluster mode. Section <c>Carml:Postgres</c>; the connection string holds the password and is never logged.</summary>
public sealed class PostgresOptions
{
    public const string Section = "Carml:Postgres";

    public string? ConnectionString { get; set; }
}

public static class PostgresStorageExtensions
{
    /// <summary>The ADO.NET invariant Orleans uses to find Npgsql.</summary>
    public const string Invariant = "Npgsql";

    /// <summary>
    /// Grain storage <paramref name="name"/> on PostgreSQL through Orleans' ADO.NET provider, with the project's schema
    /// migrated before the provider starts. A database that cannot be reached stops the silo at start with a clear message.
    /// </summary>
    public static ISiloBuilder AddPostgresGrainStorage(this ISiloBuilder silo, string name, string connectionString)
    {
        silo.AddAdoNetGrainStorage(name, options =>
        {
            options.Invariant = Invariant;
            options.ConnectionString = connectionString;
            options.DeleteStateOnClear = true;
        });
        silo.Services.TryAddMigrations(connectionString);
        return silo;
    }

    private static void TryAddMigrations(this IServiceCollection services, string connectionString)
    {
        if (services.Any(d => d.ServiceType == typeof(PostgresMigrator)))
        {
            return;
        }

        services.AddSingleton<PostgresMigrator>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp =>
            new MigrationLifecycle(sp.GetRequiredService<PostgresMigrator>(), connectionString));
    }

    /// <summary>Runs the migrations before any grain storage initialises.</summary>
    private sealed class MigrationLifecycle(PostgresMigrator migrator, string connectionString) : ILifecycleParticipant<ISiloLifecycle>
    {
        public void Participate(ISiloLifecycle lifecycle) =>
            lifecycle.Subscribe(nameof(MigrationLifecycle), ServiceLifecycleStage.RuntimeInitialize, ct => migrator.MigrateAsync(connectionString, ct));
    }
}

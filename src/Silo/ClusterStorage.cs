using Carml.Orleans.Core;
using Carml.Orleans.Grains;
using Carml.Orleans.Persistence;
using Carml.Orleans.Storage;
using Microsoft.Extensions.Configuration;

namespace Carml.Orleans.Silo;

/// <summary>
/// Where a cluster keeps grain state and run records: PostgreSQL when <c>Carml:Postgres:ConnectionString</c> is set
/// (the production setting), otherwise the interim SQLite files in the shared data directory (one host only).
/// </summary>
public static class ClusterStorage
{
    public static string? PostgresConnectionString(IConfiguration configuration) =>
        configuration.GetSection(PostgresOptions.Section).Get<PostgresOptions>()?.ConnectionString is { Length: > 0 } connection ? connection : null;

    public static ISiloBuilder AddClusterGrainStorage(this ISiloBuilder silo, IConfiguration configuration, string dataDirectory) =>
        PostgresConnectionString(configuration) is { } connection
            ? silo.AddPostgresGrainStorage(StorageNames.Models, connection)
            : silo.AddSqliteGrainStorage(StorageNames.Models, o => o.DatabasePath = Path.Combine(dataDirectory, "carml.db"));

    public static IRunStore CreateRunStore(IConfiguration configuration, string dataDirectory) =>
        PostgresConnectionString(configuration) is { } connection
            ? new PostgresRunStore(connection)
            : new SqliteRunStore(Path.Combine(dataDirectory, "runs.db"));
}

using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Carml.Orleans.Persistence;

/// <summary>One versioned SQL script shipped with the assembly (<c>Migrations/NNNN_name.sql</c>).</summary>
public sealed record Migration(int Version, string Name, string Sql);

/// <summary>The database could not be reached or migrated; the message names the server, never the password.</summary>
public sealed class DatabaseUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Applies the project's PostgreSQL scripts in version order, each in its own transaction together with its row in
/// <c>carml_schema_version</c>, under an advisory lock so silos starting together do not race. Applying twice changes
/// nothing: recorded versions are skipped.
/// </summary>
public sealed partial class PostgresMigrator(ILogger<PostgresMigrator> logger)
{
    private const long AdvisoryLockKey = 0x6361726d6c; // "carml"

    public static IReadOnlyList<Migration> Migrations { get; } = LoadMigrations();

    /// <summary>Applies pending migrations; returns the versions applied now.</summary>
    public async Task<IReadOnlyList<int>> MigrateAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            throw new DatabaseUnavailableException($"PostgreSQL at {Describe(connectionString)} cannot be reached: {e.Message}", e);
        }

        await Execute(connection, null, "SELECT pg_advisory_lock(@key)", cancellationToken, ("key", AdvisoryLockKey));
        try
        {
            await Execute(connection, null, """
                CREATE TABLE IF NOT EXISTS carml_schema_version
                (
                    version integer NOT NULL PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, cancellationToken);
            var applied = new HashSet<int>();
            await using (var query = new NpgsqlCommand("SELECT version FROM carml_schema_version", connection))
            await using (var reader = await query.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    applied.Add(reader.GetInt32(0));
                }
            }

            var now = new List<int>();
            foreach (var migration in Migrations.Where(m => !applied.Contains(m.Version)))
            {
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await Execute(connection, transaction, migration.Sql, cancellationToken);
                await Execute(connection, transaction, "INSERT INTO carml_schema_version (version, name) VALUES (@version, @name)", cancellationToken,
                    ("version", migration.Version), ("name", migration.Name));
                await transaction.CommitAsync(cancellationToken);
                LogApplied(logger, migration.Version, migration.Name);
                now.Add(migration.Version);
            }

            return now;
        }
        finally
        {
            await Execute(connection, null, "SELECT pg_advisory_unlock(@key)", CancellationToken.None, ("key", AdvisoryLockKey));
        }
    }

    /// <summary>The highest applied version, or 0 for an empty database.</summary>
    public static async Task<int> CurrentVersionAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM carml_schema_version", connection);
        return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Host, port and database of a connection string: what may appear in logs and errors.</summary>
    public static string Describe(string connectionString)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString);
            return $"{builder.Host}:{builder.Port}/{builder.Database}";
        }
        catch (ArgumentException)
        {
            return "(unreadable connection string)";
        }
    }

    private static async Task Execute(
        NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static IReadOnlyList<Migration> LoadMigrations()
    {
        const string prefix = "Carml.Orleans.Persistence.Migrations.";
        var assembly = typeof(PostgresMigrator).Assembly;
        var migrations = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var file = resource[prefix.Length..];
            var match = MigrationName().Match(file);
            if (!match.Success)
            {
                throw new InvalidOperationException($"Migration {file} is not named NNNN_name.sql.");
            }

            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            migrations.Add(new Migration(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), match.Groups[2].Value, reader.ReadToEnd()));
        }

        var ordered = migrations.OrderBy(m => m.Version).ToList();
        if (ordered.Select(m => m.Version).Distinct().Count() != ordered.Count)
        {
            throw new InvalidOperationException("Two migrations share a version number.");
        }

        return ordered;
    }

    [GeneratedRegex("^([0-9]{4})_([a-z0-9_]+)\\.sql$")]
    private static partial Regex MigrationName();

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "Applied database migration {Version} ({Name})")]
    private static partial void LogApplied(ILogger logger, int version, string name);
}

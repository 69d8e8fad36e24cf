using System.Globalization;
using System.Text.Json;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Npgsql;
using NpgsqlTypes;

namespace Carml.Orleans.Persistence;

/// <summary>Run records in PostgreSQL (cluster mode): table <c>carml_runs</c> from migration 0003, searched with indexed SQL.</summary>
public sealed class PostgresRunStore(string connectionString) : IRunStore
{
    private readonly NpgsqlDataSource _dataSource = NpgsqlDataSource.Create(connectionString);

    public async Task SaveAsync(IReadOnlyList<RunRecord> runs, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        foreach (var run in runs)
        {
            var command = new NpgsqlBatchCommand("""
                INSERT INTO carml_runs (id, kind, model, version, agent, status, created_at, labels, record)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (id) DO UPDATE SET status = excluded.status, agent = excluded.agent, labels = excluded.labels, record = excluded.record
                """);
            command.Parameters.Add(new NpgsqlParameter { Value = run.Id });
            command.Parameters.Add(new NpgsqlParameter { Value = Name(run.Kind) });
            command.Parameters.Add(new NpgsqlParameter { Value = run.Model });
            command.Parameters.Add(new NpgsqlParameter { Value = run.Version });
            command.Parameters.Add(new NpgsqlParameter { Value = (object?)run.Agent ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter { Value = Name(run.Status) });
            command.Parameters.Add(new NpgsqlParameter { Value = run.CreatedAt.ToUniversalTime() });
            command.Parameters.Add(new NpgsqlParameter { Value = JsonSerializer.Serialize(run.Labels), NpgsqlDbType = NpgsqlDbType.Jsonb });
            command.Parameters.Add(new NpgsqlParameter { Value = RunJson.Serialize(run), NpgsqlDbType = NpgsqlDbType.Jsonb });
            batch.BatchCommands.Add(command);
        }

        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<RunRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand("SELECT record::text FROM carml_runs WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = id });
        return await command.ExecuteScalarAsync(cancellationToken) is string json ? RunJson.Deserialize(json) : null;
    }

    public async Task<RunPage> SearchAsync(RunQuery query, CancellationToken cancellationToken)
    {
        RunIds.Validate(query);
        await using var command = _dataSource.CreateCommand();
        var where = new List<string>();
        void Filter(string column, string op, object value, NpgsqlDbType? type = null)
        {
            var parameter = new NpgsqlParameter { Value = value };
            if (type is { } t)
            {
                parameter.NpgsqlDbType = t;
            }

            command.Parameters.Add(parameter);
            where.Add($"{column} {op} ${command.Parameters.Count}");
        }

        if (query.Model is { } m) Filter("model", "=", m);
        if (query.Version is { } v) Filter("version", "=", v);
        if (query.Agent is { } a) Filter("agent", "=", a);
        if (query.Owner is { } o) Filter("record->>'owner'", "=", o);
        if (query.Status is { } s) Filter("status", "=", Name(s));
        if (query.Kind is { } k) Filter("kind", "=", Name(k));
        if (query.From is { } from) Filter("created_at", ">=", from.ToUniversalTime());
        if (query.To is { } to) Filter("created_at", "<", to.ToUniversalTime());
        if (query.Label is { } label)
        {
            Filter("labels", "@>", JsonSerializer.Serialize(new Dictionary<string, string> { [label.Key] = label.Value }), NpgsqlDbType.Jsonb);
        }

        if (query.PageToken is { } token)
        {
            var (ticks, id) = RunIds.ParseCursor(token);
            command.Parameters.Add(new NpgsqlParameter { Value = new DateTimeOffset(ticks, TimeSpan.Zero) });
            command.Parameters.Add(new NpgsqlParameter { Value = id });
            where.Add($"(created_at, id) < (${command.Parameters.Count - 1}, ${command.Parameters.Count})");
        }

        command.Parameters.Add(new NpgsqlParameter { Value = query.PageSize + 1 });
        command.CommandText = "SELECT record::text FROM carml_runs"
            + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : string.Empty)
            + $" ORDER BY created_at DESC, id DESC LIMIT ${command.Parameters.Count}";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await RunIds.ReadPageAsync(reader, query.PageSize, cancellationToken);
    }

    private static string Name<T>(T value) where T : struct, Enum => value.ToString().ToLower(CultureInfo.InvariantCulture);
}

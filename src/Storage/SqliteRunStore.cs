using System.Globalization;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Data.Sqlite;

namespace Carml.Orleans.Storage;

/// <summary>Run records in the embedded SQLite store (standalone mode), searched with indexed SQL.</summary>
public sealed class SqliteRunStore : IRunStore
{
    private readonly string _connectionString;
    private readonly Lazy<Task> _schema;

    public SqliteRunStore(string databasePath)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(databasePath))!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = databasePath, Pooling = true, DefaultTimeout = 30 }.ToString();
        _schema = new Lazy<Task>(CreateSchemaAsync);
    }

    public async Task SaveAsync(IReadOnlyList<RunRecord> runs, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.Transaction = (SqliteTransaction)transaction;
        command.CommandText = """
            INSERT INTO runs (id, kind, model, version, agent, status, created_ticks, labels, record)
            VALUES ($id, $kind, $model, $version, $agent, $status, $created, $labels, $record)
            ON CONFLICT (id) DO UPDATE SET status = excluded.status, agent = excluded.agent, labels = excluded.labels, record = excluded.record
            """;
        var id = command.Parameters.Add("$id", SqliteType.Text);
        var kind = command.Parameters.Add("$kind", SqliteType.Text);
        var model = command.Parameters.Add("$model", SqliteType.Text);
        var version = command.Parameters.Add("$version", SqliteType.Text);
        var agent = command.Parameters.Add("$agent", SqliteType.Text);
        var status = command.Parameters.Add("$status", SqliteType.Text);
        var created = command.Parameters.Add("$created", SqliteType.Integer);
        var labels = command.Parameters.Add("$labels", SqliteType.Text);
        var record = command.Parameters.Add("$record", SqliteType.Text);
        foreach (var run in runs)
        {
            id.Value = run.Id;
            kind.Value = Name(run.Kind);
            model.Value = run.Model;
            version.Value = run.Version;
            agent.Value = (object?)run.Agent ?? DBNull.Value;
            status.Value = Name(run.Status);
            created.Value = run.CreatedAt.UtcTicks;
            labels.Value = System.Text.Json.JsonSerializer.Serialize(run.Labels);
            record.Value = RunJson.Serialize(run);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<RunRecord?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT record FROM runs WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        return await command.ExecuteScalarAsync(cancellationToken) is string json ? RunJson.Deserialize(json) : null;
    }

    public async Task<RunPage> SearchAsync(RunQuery query, CancellationToken cancellationToken)
    {
        RunIds.Validate(query);
        await _schema.Value;
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        var where = new List<string>();
        void Filter(string clause, string name, object value)
        {
            where.Add(clause);
            command.Parameters.AddWithValue(name, value);
        }

        if (query.Model is { } m) Filter("model = $model", "$model", m);
        if (query.Version is { } v) Filter("version = $version", "$version", v);
        if (query.Agent is { } a) Filter("agent = $agent", "$agent", a);
        if (query.Owner is { } o) Filter("json_extract(record, '$.owner') = $owner", "$owner", o);
        if (query.Status is { } s) Filter("status = $status", "$status", Name(s));
        if (query.Kind is { } k) Filter("kind = $kind", "$kind", Name(k));
        if (query.From is { } from) Filter("created_ticks >= $from", "$from", from.UtcTicks);
        if (query.To is { } to) Filter("created_ticks < $to", "$to", to.UtcTicks);
        if (query.Label is { } label)
        {
            where.Add("json_extract(labels, $labelPath) = $labelValue");
            command.Parameters.AddWithValue("$labelPath", "$.\"" + label.Key.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"");
            command.Parameters.AddWithValue("$labelValue", label.Value);
        }

        if (query.PageToken is { } token)
        {
            var (ticks, id) = RunIds.ParseCursor(token);
            where.Add("(created_ticks < $cursorTicks OR (created_ticks = $cursorTicks AND id < $cursorId))");
            command.Parameters.AddWithValue("$cursorTicks", ticks);
            command.Parameters.AddWithValue("$cursorId", id);
        }

        command.CommandText = "SELECT record FROM runs"
            + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : string.Empty)
            + " ORDER BY created_ticks DESC, id DESC LIMIT $limit";
        command.Parameters.AddWithValue("$limit", query.PageSize + 1);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await RunIds.ReadPageAsync(reader, query.PageSize, cancellationToken);
    }

    private async Task CreateSchemaAsync()
    {
        await using var connection = await OpenAsync(CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS runs (
                id TEXT NOT NULL PRIMARY KEY,
                kind TEXT NOT NULL,
                model TEXT NOT NULL,
                version TEXT NOT NULL,
                agent TEXT NULL,
                status TEXT NOT NULL,
                created_ticks INTEGER NOT NULL,
                labels TEXT NOT NULL,
                record TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS ix_runs_created ON runs (created_ticks DESC, id DESC);
            CREATE INDEX IF NOT EXISTS ix_runs_model ON runs (model, version, created_ticks DESC);
            CREATE INDEX IF NOT EXISTS ix_runs_kind_status ON runs (kind, status, created_ticks DESC);
            """;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    private static string Name<T>(T value) where T : struct, Enum => value.ToString().ToLower(CultureInfo.InvariantCulture);
}

using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Serialization.Serializers;
using Orleans.Storage;

namespace Carml.Orleans.Storage;

/// <summary>
/// Durable Orleans grain storage in one embedded SQLite database file.
/// State is serialized with the Orleans serializer; the row version is the ETag.
/// </summary>
/// <remarks>
/// Each operation opens a pooled connection (Microsoft.Data.Sqlite pools per connection string) and runs a
/// single parameterised statement, so the optimistic-concurrency check and the change happen atomically.
/// The database runs in WAL mode; writers wait up to <see cref="SqliteGrainStorageOptions.BusyTimeout"/> for locks.
/// </remarks>
public sealed partial class SqliteGrainStorage : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>
{
    private readonly SqliteGrainStorageOptions _options;
    private readonly Serializer _serializer;
    private readonly IActivatorProvider _activatorProvider;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<SqliteGrainStorage> _logger;
    private readonly string _connectionString;
    private readonly string _busyTimeoutPragma;
    private readonly SemaphoreSlim _schemaLock = new(1, 1);
    private volatile bool _schemaReady;

    public SqliteGrainStorage(
        string name,
        SqliteGrainStorageOptions options,
        Serializer serializer,
        IActivatorProvider activatorProvider,
        TimeProvider timeProvider,
        ILogger<SqliteGrainStorage> logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(serializer);
        ArgumentNullException.ThrowIfNull(activatorProvider);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);

        var validation = new SqliteGrainStorageOptionsValidator().Validate(name, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(name, typeof(SqliteGrainStorageOptions), validation.Failures);
        }

        Name = name;
        _options = options;
        _serializer = serializer;
        _activatorProvider = activatorProvider;
        _timeProvider = timeProvider;
        _logger = logger;
        DatabasePath = Path.GetFullPath(options.DatabasePath!);

        var busyTimeoutMilliseconds = (int)Math.Clamp(Math.Ceiling(options.BusyTimeout.TotalMilliseconds), 1, int.MaxValue);
        _busyTimeoutPragma = string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {busyTimeoutMilliseconds};");
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = DatabasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = (int)Math.Clamp(Math.Ceiling(options.BusyTimeout.TotalSeconds), 1, int.MaxValue),
        }.ToString();
    }

    /// <summary>The provider name this instance is registered under.</summary>
    public string Name { get; }

    /// <summary>The absolute path of the database file.</summary>
    public string DatabasePath { get; }

    /// <summary>Creates an instance for the named provider from a service provider (the keyed-service factory).</summary>
    public static SqliteGrainStorage Create(IServiceProvider services, string name)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var options = services.GetRequiredService<IOptionsMonitor<SqliteGrainStorageOptions>>().Get(name);
        return new SqliteGrainStorage(
            name,
            options,
            services.GetRequiredService<Serializer>(),
            services.GetRequiredService<IActivatorProvider>(),
            services.GetService<TimeProvider>() ?? TimeProvider.System,
            services.GetRequiredService<ILogger<SqliteGrainStorage>>());
    }

    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        lifecycle.Subscribe($"{nameof(SqliteGrainStorage)}-{Name}", _options.InitStage, InitializeAsync, OnStopAsync);
    }

    /// <summary>
    /// Switches the database to WAL mode and creates the table when missing. Idempotent and safe to call concurrently;
    /// every operation also calls it, so a provider used outside a silo needs no explicit start.
    /// </summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        if (_schemaReady)
        {
            return;
        }

        await _schemaLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_schemaReady)
            {
                return;
            }

            await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

            string journalMode;
            await using (var command = connection.CreateCommand())
            {
                command.CommandText = SqliteGrainStateStatements.EnableWriteAheadLog;
                journalMode = Convert.ToString(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture) ?? string.Empty;
            }

            if (!string.Equals(journalMode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                LogWriteAheadLogUnavailable(_logger, Name, DatabasePath, journalMode);
            }

            await using (var command = connection.CreateCommand())
            {
                command.CommandText = SqliteGrainStateStatements.CreateSchema;
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            _schemaReady = true;
            LogSchemaReady(_logger, Name, DatabasePath, journalMode);
        }
        finally
        {
            _schemaLock.Release();
        }
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        => ReadStateAsync(stateName, grainId, grainState, CancellationToken.None);

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        ArgumentNullException.ThrowIfNull(grainState);
        var grainKey = grainId.ToString();

        await using var connection = await OpenReadyConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = CreateKeyedCommand(connection, SqliteGrainStateStatements.Read, stateName, grainKey);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);

        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            grainState.State = CreateDefaultState<T>();
            grainState.ETag = null;
            grainState.RecordExists = false;
            LogStateRead(_logger, Name, stateName, grainKey, null, false);
            return;
        }

        var version = reader.GetInt64(1);
        var etag = FormatEtag(version);
        if (reader.IsDBNull(0))
        {
            // A cleared state kept by DeleteStateOnClear = false: no record, but the version carries on.
            grainState.State = CreateDefaultState<T>();
            grainState.ETag = etag;
            grainState.RecordExists = false;
            LogStateRead(_logger, Name, stateName, grainKey, etag, false);
            return;
        }

        var payload = reader.GetFieldValue<byte[]>(0);
        grainState.State = _serializer.Deserialize<T>(payload);
        grainState.ETag = etag;
        grainState.RecordExists = true;
        LogStateRead(_logger, Name, stateName, grainKey, etag, true);
    }

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        => WriteStateAsync(stateName, grainId, grainState, CancellationToken.None);

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        ArgumentNullException.ThrowIfNull(grainState);
        var grainKey = grainId.ToString();
        var payload = _serializer.SerializeToArray(grainState.State);
        var currentEtag = grainState.ETag;

        await using var connection = await OpenReadyConnectionAsync(cancellationToken).ConfigureAwait(false);

        long newVersion;
        if (currentEtag is null)
        {
            await using var insert = CreateKeyedCommand(connection, SqliteGrainStateStatements.Insert, stateName, grainKey);
            insert.Parameters.AddWithValue(SqliteGrainStateStatements.PayloadParameter, payload);
            insert.Parameters.AddWithValue(SqliteGrainStateStatements.ModifiedAtParameter, FormatNow());
            if (await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                throw await CreateConflictAsync(connection, "write", stateName, grainKey, currentEtag, cancellationToken).ConfigureAwait(false);
            }

            newVersion = 1;
        }
        else
        {
            if (!TryParseEtag(currentEtag, out var expectedVersion))
            {
                throw await CreateConflictAsync(connection, "write", stateName, grainKey, currentEtag, cancellationToken).ConfigureAwait(false);
            }

            await using var update = CreateKeyedCommand(connection, SqliteGrainStateStatements.Update, stateName, grainKey);
            update.Parameters.AddWithValue(SqliteGrainStateStatements.PayloadParameter, payload);
            update.Parameters.AddWithValue(SqliteGrainStateStatements.ModifiedAtParameter, FormatNow());
            update.Parameters.AddWithValue(SqliteGrainStateStatements.ExpectedVersionParameter, expectedVersion);
            if (await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                throw await CreateConflictAsync(connection, "write", stateName, grainKey, currentEtag, cancellationToken).ConfigureAwait(false);
            }

            newVersion = expectedVersion + 1;
        }

        grainState.ETag = FormatEtag(newVersion);
        grainState.RecordExists = true;
        LogStateWritten(_logger, Name, stateName, grainKey, grainState.ETag);
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        => ClearStateAsync(stateName, grainId, grainState, CancellationToken.None);

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        ArgumentNullException.ThrowIfNull(grainState);
        var grainKey = grainId.ToString();
        var currentEtag = grainState.ETag;

        await using var connection = await OpenReadyConnectionAsync(cancellationToken).ConfigureAwait(false);

        if (currentEtag is null)
        {
            // The caller believes nothing is stored: succeed when that is so, otherwise the caller is stale.
            if (await ReadStoredVersionAsync(connection, stateName, grainKey, cancellationToken).ConfigureAwait(false) is not null)
            {
                throw await CreateConflictAsync(connection, "clear", stateName, grainKey, currentEtag, cancellationToken).ConfigureAwait(false);
            }

            grainState.RecordExists = false;
            LogStateCleared(_logger, Name, stateName, grainKey, null);
            return;
        }

        if (!TryParseEtag(currentEtag, out var expectedVersion))
        {
            throw await CreateConflictAsync(connection, "clear", stateName, grainKey, currentEtag, cancellationToken).ConfigureAwait(false);
        }

        await using var command = CreateKeyedCommand(
            connection,
            _options.DeleteStateOnClear ? SqliteGrainStateStatements.Delete : SqliteGrainStateStatements.Reset,
            stateName,
            grainKey);
        command.Parameters.AddWithValue(SqliteGrainStateStatements.ExpectedVersionParameter, expectedVersion);
        if (!_options.DeleteStateOnClear)
        {
            command.Parameters.AddWithValue(SqliteGrainStateStatements.ModifiedAtParameter, FormatNow());
        }

        if (await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
        {
            throw await CreateConflictAsync(connection, "clear", stateName, grainKey, currentEtag, cancellationToken).ConfigureAwait(false);
        }

        grainState.ETag = _options.DeleteStateOnClear ? null : FormatEtag(expectedVersion + 1);
        grainState.RecordExists = false;
        LogStateCleared(_logger, Name, stateName, grainKey, grainState.ETag);
    }

    private async Task OnStopAsync(CancellationToken cancellationToken)
    {
        // Close idle pooled connections so the last one checkpoints the WAL and releases the file.
        await using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        LogConnectionsReleased(_logger, Name, DatabasePath);
    }

    private async Task<SqliteConnection> OpenReadyConnectionAsync(CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        return await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<SqliteConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);

            // busy_timeout is per connection; pooled connections keep it, but a new one starts at zero.
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = _busyTimeoutPragma;
            await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static SqliteCommand CreateKeyedCommand(SqliteConnection connection, string sql, string stateName, string grainKey)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue(SqliteGrainStateStatements.StateNameParameter, stateName);
        command.Parameters.AddWithValue(SqliteGrainStateStatements.GrainIdParameter, grainKey);
        return command;
    }

    private static async Task<long?> ReadStoredVersionAsync(SqliteConnection connection, string stateName, string grainKey, CancellationToken cancellationToken)
    {
        await using var command = CreateKeyedCommand(connection, SqliteGrainStateStatements.ReadVersion, stateName, grainKey);
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is null or DBNull ? null : Convert.ToInt64(value, CultureInfo.InvariantCulture);
    }

    private async Task<InconsistentStateException> CreateConflictAsync(
        SqliteConnection connection,
        string operation,
        string stateName,
        string grainKey,
        string? currentEtag,
        CancellationToken cancellationToken)
    {
        var storedVersion = await ReadStoredVersionAsync(connection, stateName, grainKey, cancellationToken).ConfigureAwait(false);
        var storedEtag = storedVersion is { } version ? FormatEtag(version) : null;
        LogEtagConflict(_logger, Name, operation, stateName, grainKey, storedEtag, currentEtag);
        var message = string.Create(
            CultureInfo.InvariantCulture,
            $"Version conflict ({operation}) in SQLite grain storage '{Name}': state '{stateName}' of grain '{grainKey}' has stored ETag '{storedEtag ?? "<none>"}', but the caller holds ETag '{currentEtag ?? "<none>"}'.");
        return new InconsistentStateException(message, storedEtag!, currentEtag!);
    }

    private T CreateDefaultState<T>() => _activatorProvider.GetActivator<T>().Create();

    private string FormatNow() => _timeProvider.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);

    private static string FormatEtag(long version) => version.ToString(CultureInfo.InvariantCulture);

    private static bool TryParseEtag(string etag, out long version)
        => long.TryParse(etag, NumberStyles.None, CultureInfo.InvariantCulture, out version) && version > 0;

    [LoggerMessage(EventId = 4100, Level = LogLevel.Information, Message = "SQLite grain storage {ProviderName} ready at {DatabasePath} (journal mode {JournalMode})")]
    private static partial void LogSchemaReady(ILogger logger, string providerName, string databasePath, string journalMode);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Warning, Message = "SQLite grain storage {ProviderName} could not enable WAL for {DatabasePath}; journal mode is {JournalMode}")]
    private static partial void LogWriteAheadLogUnavailable(ILogger logger, string providerName, string databasePath, string journalMode);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Trace, Message = "SQLite grain storage {ProviderName} read {StateName} of {GrainId}: ETag {ETag}, record exists {RecordExists}")]
    private static partial void LogStateRead(ILogger logger, string providerName, string stateName, string grainId, string? eTag, bool recordExists);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Trace, Message = "SQLite grain storage {ProviderName} wrote {StateName} of {GrainId}: ETag {ETag}")]
    private static partial void LogStateWritten(ILogger logger, string providerName, string stateName, string grainId, string? eTag);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Trace, Message = "SQLite grain storage {ProviderName} cleared {StateName} of {GrainId}: ETag {ETag}")]
    private static partial void LogStateCleared(ILogger logger, string providerName, string stateName, string grainId, string? eTag);

    [LoggerMessage(EventId = 4105, Level = LogLevel.Debug, Message = "SQLite grain storage {ProviderName} rejected {Operation} of {StateName} for {GrainId}: stored ETag {StoredETag}, caller ETag {CurrentETag}")]
    private static partial void LogEtagConflict(ILogger logger, string providerName, string operation, string stateName, string grainId, string? storedETag, string? currentETag);

    [LoggerMessage(EventId = 4106, Level = LogLevel.Debug, Message = "SQLite grain storage {ProviderName} released pooled connections to {DatabasePath}")]
    private static partial void LogConnectionsReleased(ILogger logger, string providerName, string databasePath);
}

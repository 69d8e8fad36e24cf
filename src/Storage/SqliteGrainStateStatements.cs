namespace Carml.Orleans.Storage;

/// <summary>
/// The SQL that <see cref="SqliteGrainStorage"/> runs. Every value travels as a parameter.
/// One row per (state name, grain id); <c>version</c> is the ETag and grows by one on each write or reset.
/// A row whose <c>payload</c> is NULL is a cleared state kept to carry its version forward.
/// </summary>
internal static class SqliteGrainStateStatements
{
    public const string StateNameParameter = "$state_name";
    public const string GrainIdParameter = "$grain_id";
    public const string PayloadParameter = "$payload";
    public const string ExpectedVersionParameter = "$expected_version";
    public const string ModifiedAtParameter = "$modified_at_utc";

    public const string EnableWriteAheadLog = "PRAGMA journal_mode = WAL;";

    public const string CreateSchema = """
        CREATE TABLE IF NOT EXISTS grain_state (
            state_name      TEXT    NOT NULL,
            grain_id        TEXT    NOT NULL,
            payload         BLOB    NULL,
            version         INTEGER NOT NULL,
            modified_at_utc TEXT    NOT NULL,
            PRIMARY KEY (state_name, grain_id)
        ) WITHOUT ROWID;
        """;

    public const string Read = """
        SELECT payload, version
        FROM grain_state
        WHERE state_name = $state_name AND grain_id = $grain_id;
        """;

    public const string ReadVersion = """
        SELECT version
        FROM grain_state
        WHERE state_name = $state_name AND grain_id = $grain_id;
        """;

    public const string Insert = """
        INSERT INTO grain_state (state_name, grain_id, payload, version, modified_at_utc)
        VALUES ($state_name, $grain_id, $payload, 1, $modified_at_utc)
        ON CONFLICT (state_name, grain_id) DO NOTHING;
        """;

    public const string Update = """
        UPDATE grain_state
        SET payload = $payload, version = version + 1, modified_at_utc = $modified_at_utc
        WHERE state_name = $state_name AND grain_id = $grain_id AND version = $expected_version;
        """;

    public const string Delete = """
        DELETE FROM grain_state
        WHERE state_name = $state_name AND grain_id = $grain_id AND version = $expected_version;
        """;

    public const string Reset = """
        UPDATE grain_state
        SET payload = NULL, version = version + 1, modified_at_utc = $modified_at_utc
        WHERE state_name = $state_name AND grain_id = $grain_id AND version = $expected_version;
        """;
}

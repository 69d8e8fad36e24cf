using Orleans;

namespace Carml.Orleans.Storage;

/// <summary>
/// Settings of one named <see cref="SqliteGrainStorage"/> provider.
/// Bind from configuration or set in code; validated when the host starts.
/// </summary>
public sealed class SqliteGrainStorageOptions
{
    /// <summary>Default for <see cref="BusyTimeout"/>.</summary>
    public static readonly TimeSpan DefaultBusyTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Path of the SQLite database file (created, with its directory, when missing). Required.
    /// A relative path is resolved against the process working directory.
    /// </summary>
    public string? DatabasePath { get; set; }

    /// <summary>
    /// When true (the default) clearing a grain's state deletes its row; when false the row is kept
    /// with an empty payload and a new version, so the ETag keeps increasing across clears.
    /// </summary>
    public bool DeleteStateOnClear { get; set; } = true;

    /// <summary>
    /// How long a statement waits for a lock held by another connection before failing with SQLITE_BUSY.
    /// </summary>
    public TimeSpan BusyTimeout { get; set; } = DefaultBusyTimeout;

    /// <summary>Silo lifecycle stage at which the schema is created.</summary>
    public int InitStage { get; set; } = ServiceLifecycleStage.ApplicationServices;
}

using Microsoft.Data.Sqlite;

namespace Carml.Orleans.Storage.Tests;

/// <summary>A fresh directory under the system temp folder, deleted with everything in it on dispose.</summary>
internal sealed class TemporaryDirectory : IDisposable
{
    public TemporaryDirectory()
    {
        FullPath = Path.Combine(Path.GetTempPath(), "carml-storage-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(FullPath);
    }

    public string FullPath { get; }

    public string PathOf(string relativePath) => Path.Combine(FullPath, relativePath);

    public void Dispose()
    {
        // Pooled connections keep the database file open; close the idle ones before deleting it.
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(FullPath))
        {
            Directory.Delete(FullPath, recursive: true);
        }
    }
}

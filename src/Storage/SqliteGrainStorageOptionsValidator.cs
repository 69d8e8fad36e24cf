using Microsoft.Extensions.Options;

namespace Carml.Orleans.Storage;

/// <summary>
/// Checks <see cref="SqliteGrainStorageOptions"/>: a file path is given, is not a directory,
/// and its directory exists or can be created; the busy timeout is positive.
/// </summary>
public sealed class SqliteGrainStorageOptionsValidator : IValidateOptions<SqliteGrainStorageOptions>
{
    public ValidateOptionsResult Validate(string? name, SqliteGrainStorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var provider = string.IsNullOrEmpty(name) ? "(unnamed)" : name;
        var failures = new List<string>();

        if (options.BusyTimeout <= TimeSpan.Zero)
        {
            failures.Add($"SQLite grain storage '{provider}': BusyTimeout must be positive (was {options.BusyTimeout}).");
        }

        var pathFailure = ValidateDatabasePath(provider, options.DatabasePath);
        if (pathFailure is not null)
        {
            failures.Add(pathFailure);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static string? ValidateDatabasePath(string provider, string? databasePath)
    {
        if (string.IsNullOrWhiteSpace(databasePath))
        {
            return $"SQLite grain storage '{provider}': DatabasePath is required (the path of the database file).";
        }

        if (databasePath.Trim().StartsWith(":memory:", StringComparison.OrdinalIgnoreCase)
            || databasePath.Contains("mode=memory", StringComparison.OrdinalIgnoreCase))
        {
            return $"SQLite grain storage '{provider}': DatabasePath must be a file path; an in-memory database is not durable.";
        }

        string fullPath;
        try
        {
            fullPath = Path.GetFullPath(databasePath);
        }
        catch (Exception exception) when (exception is ArgumentException or NotSupportedException or PathTooLongException or System.Security.SecurityException)
        {
            return $"SQLite grain storage '{provider}': DatabasePath '{databasePath}' is not a valid path: {exception.Message}";
        }

        if (Directory.Exists(fullPath))
        {
            return $"SQLite grain storage '{provider}': DatabasePath '{fullPath}' is a directory; give the path of a database file inside it.";
        }

        var directory = Path.GetDirectoryName(fullPath);
        if (string.IsNullOrEmpty(directory))
        {
            return null;
        }

        try
        {
            Directory.CreateDirectory(directory);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return $"SQLite grain storage '{provider}': the directory '{directory}' of DatabasePath could not be created: {exception.Message}";
        }

        return null;
    }
}

using System.IO.Compression;
using SharpCompress.Compressors.BZip2;
using SharpCompress.Readers;

namespace Carml.Orleans.Transfers;

/// <summary>What a file is, judged by its first bytes (never by its name alone).</summary>
public enum ArchiveKind
{
    None,
    Zip,
    Tar,
    TarGzip,
    TarBzip2,
    Gzip,
    Bzip2,
}

public sealed class ArchiveLimits
{
    /// <summary>Most bytes an archive may expand to (default 20 GiB).</summary>
    public long MaxTotalBytes { get; set; } = 20L * 1024 * 1024 * 1024;

    /// <summary>Most entries an archive may hold (default 100 000).</summary>
    public int MaxFiles { get; set; } = 100_000;
}

/// <summary>An archive that cannot be extracted safely or at all; nothing of it is left on disk.</summary>
public sealed class ArchiveException(string message) : Exception(message);

/// <summary>The files an extraction wrote, relative to the target directory with '/' separators.</summary>
public sealed record ExtractedArchive(ArchiveKind Kind, string Directory, IReadOnlyList<string> Files, long TotalBytes);

/// <summary>
/// Extracts zip, tar, tar.gz/tgz, tar.bz2/tbz2, gz and bz2 into a directory that must not exist yet. Entries are
/// checked before anything is written: no absolute paths, no '..' escaping the target, no links that point outside it,
/// and the byte and file counts (measured while writing, not trusted from headers) stay under the limits. On any
/// failure the target directory is removed.
/// </summary>
public static class ArchiveExtractor
{
    private const int TarMagicOffset = 257;

    public static ArchiveKind Detect(string path)
    {
        using var file = File.OpenRead(path);
        var head = ReadHead(file, 512);
        if (head.Length >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
        {
            return ArchiveKind.Zip;
        }

        if (IsTar(head))
        {
            return ArchiveKind.Tar;
        }

        if (head.Length >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        {
            file.Position = 0;
            using var gzip = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true);
            return IsTar(ReadHead(gzip, 512)) ? ArchiveKind.TarGzip : ArchiveKind.Gzip;
        }

        if (head.Length >= 3 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h')
        {
            file.Position = 0;
            using var bzip2 = BZip2Stream.Create(file, SharpCompress.Compressors.CompressionMode.Decompress, false, leaveOpen: true);
            return IsTar(ReadHead(bzip2, 512)) ? ArchiveKind.TarBzip2 : ArchiveKind.Bzip2;
        }

        return ArchiveKind.None;
    }

    /// <summary>
    /// Extracts <paramref name="archivePath"/> into <paramref name="targetDirectory"/> (created here). For a single
    /// compressed file (gz, bz2) the output is named by <paramref name="nameHint"/> less its extension.
    /// </summary>
    public static ExtractedArchive Extract(string archivePath, string targetDirectory, ArchiveLimits limits, string? nameHint = null)
    {
        var kind = Detect(archivePath);
        if (kind == ArchiveKind.None)
        {
            throw new ArchiveException("The file is not a zip, tar, tar.gz, tar.bz2, gz or bz2 archive.");
        }

        var root = Path.GetFullPath(targetDirectory);
        if (Directory.Exists(root) || File.Exists(root))
        {
            throw new ArgumentException($"The extraction target {root} already exists.", nameof(targetDirectory));
        }

        Directory.CreateDirectory(root);
        try
        {
            var budget = new Budget(limits);
            var files = kind is ArchiveKind.Gzip or ArchiveKind.Bzip2
                ? ExtractSingle(archivePath, kind, root, nameHint, budget)
                : ExtractEntries(archivePath, root, budget);
            return new ExtractedArchive(kind, root, files, budget.Bytes);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or SharpCompress.Common.ArchiveException)
        {
            Directory.Delete(root, recursive: true);
            throw new ArchiveException($"The archive is damaged or truncated: {e.Message}");
        }
        catch
        {
            Directory.Delete(root, recursive: true);
            throw;
        }
    }

    private static List<string> ExtractSingle(string archivePath, ArchiveKind kind, string root, string? nameHint, Budget budget)
    {
        var name = Path.GetFileName(nameHint ?? "file");
        foreach (var extension in new[] { ".gz", ".bz2" })
        {
            if (name.EndsWith(extension, StringComparison.OrdinalIgnoreCase) && name.Length > extension.Length)
            {
                name = name[..^extension.Length];
            }
        }

        var relative = SafeRelativePath(name, root);
        using var file = File.OpenRead(archivePath);
        using Stream decompressed = kind == ArchiveKind.Gzip
            ? new GZipStream(file, CompressionMode.Decompress)
            : BZip2Stream.Create(file, SharpCompress.Compressors.CompressionMode.Decompress, true, leaveOpen: false);
        budget.CountFile(relative);
        Write(decompressed, Path.Combine(root, relative), budget);
        return [relative.Replace('\\', '/')];
    }

    private static List<string> ExtractEntries(string archivePath, string root, Budget budget)
    {
        var files = new List<string>();
        using var file = File.OpenRead(archivePath);
        IReader reader;
        try
        {
            reader = ReaderFactory.OpenReader(file, new ReaderOptions { LeaveStreamOpen = true });
        }
        catch (Exception e) when (e is InvalidOperationException or InvalidDataException or SharpCompress.Common.ArchiveException)
        {
            throw new ArchiveException($"The archive cannot be read: {e.Message}");
        }

        using (reader)
        {
            try
            {
                while (reader.MoveToNextEntry())
                {
                    var entry = reader.Entry;
                    var relative = SafeRelativePath(entry.Key ?? string.Empty, root);
                    var path = Path.Combine(root, relative);
                    if (!entry.IsDirectory && (File.Exists(path) || Directory.Exists(path)))
                    {
                        throw new ArchiveException($"Entry '{relative}' appears more than once.");
                    }

                    if (ConflictingParent(root, relative) is { } parent)
                    {
                        throw new ArchiveException($"Entry '{relative}' needs the directory '{parent}', which the archive holds as a file.");
                    }

                    if (entry.IsDirectory)
                    {
                        Directory.CreateDirectory(path);
                        continue;
                    }

                    budget.CountFile(relative);
                    if (!string.IsNullOrEmpty(entry.LinkTarget))
                    {
                        CreateLink(entry.LinkTarget, path, root, relative);
                        continue;
                    }

                    if (entry.Size > budget.Remaining)
                    {
                        throw new ArchiveException($"Entry '{relative}' declares {entry.Size} bytes; the archive may expand to at most {budget.Limits.MaxTotalBytes}.");
                    }

                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    long written;
                    using (var entryStream = reader.OpenEntryStream())
                    {
                        written = Write(entryStream, path, budget);
                    }

                    if (entry.Size > 0 && written != entry.Size)
                    {
                        throw new ArchiveException($"The archive is truncated: entry '{relative}' has {written} of its {entry.Size} bytes.");
                    }

                    files.Add(relative.Replace('\\', '/'));
                }
            }
            catch (Exception e) when (e is InvalidDataException or SharpCompress.Common.ArchiveException or SharpCompress.Common.IncompleteArchiveException)
            {
                throw new ArchiveException($"The archive is damaged: {e.Message}");
            }
        }

        return files;
    }

    /// <summary>A relative path that stays inside the root; throws for absolute paths and escapes.</summary>
    private static string SafeRelativePath(string key, string root)
    {
        var normalized = key.Replace('\\', '/');
        if (normalized.Length == 0)
        {
            throw new ArchiveException("The archive has an entry without a name.");
        }

        if (normalized.StartsWith('/') || (normalized.Length > 1 && normalized[1] == ':'))
        {
            throw new ArchiveException($"Entry '{key}' has an absolute path; archives may only hold relative paths.");
        }

        string full;
        try
        {
            full = Path.GetFullPath(Path.Combine(root, normalized));
        }
        catch (ArgumentException)
        {
            throw new ArchiveException($"Entry '{key}' has a name that is not a valid path.");
        }

        if (!full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new ArchiveException($"Entry '{key}' points outside the extraction directory.");
        }

        return Path.GetRelativePath(root, full);
    }

    /// <summary>The first ancestor of <paramref name="relative"/> that exists as a file, if any.</summary>
    private static string? ConflictingParent(string root, string relative)
    {
        var directory = Path.GetDirectoryName(relative);
        while (!string.IsNullOrEmpty(directory))
        {
            if (File.Exists(Path.Combine(root, directory)))
            {
                return directory.Replace('\\', '/');
            }

            directory = Path.GetDirectoryName(directory);
        }

        return null;
    }

    private static void CreateLink(string target, string path, string root, string relative)
    {
        if (target.StartsWith('/') || target.Replace('\\', '/').StartsWith("//", StringComparison.Ordinal))
        {
            throw new ArchiveException($"Link '{relative}' points to the absolute path '{target}'.");
        }

        var resolved = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, target));
        if (!resolved.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new ArchiveException($"Link '{relative}' points outside the extraction directory ('{target}').");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.CreateSymbolicLink(path, target);
    }

    private static long Write(Stream source, string path, Budget budget)
    {
        using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        var buffer = new byte[81920];
        long written = 0;
        int read;
        while ((read = source.Read(buffer, 0, buffer.Length)) > 0)
        {
            budget.CountBytes(read);
            output.Write(buffer, 0, read);
            written += read;
        }

        return written;
    }

    private static bool IsTar(ReadOnlySpan<byte> head) =>
        head.Length >= TarMagicOffset + 5 && head.Slice(TarMagicOffset, 5).SequenceEqual("ustar"u8);

    private static byte[] ReadHead(Stream stream, int count)
    {
        var buffer = new byte[count];
        var total = 0;
        try
        {
            int read;
            while (total < count && (read = stream.Read(buffer, total, count - total)) > 0)
            {
                total += read;
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            // A damaged compressed stream: whatever was read decides the kind; extraction reports the damage.
        }

        return buffer[..total];
    }

    private sealed class Budget(ArchiveLimits limits)
    {
        public ArchiveLimits Limits { get; } = limits;

        public long Bytes { get; private set; }

        public int Files { get; private set; }

        public long Remaining => Limits.MaxTotalBytes - Bytes;

        public void CountFile(string relative)
        {
            if (++Files > Limits.MaxFiles)
            {
                throw new ArchiveException($"The archive holds more than {Limits.MaxFiles} files (at '{relative}').");
            }
        }

        public void CountBytes(int count)
        {
            Bytes += count;
            if (Bytes > Limits.MaxTotalBytes)
            {
                throw new ArchiveException($"The archive expands to more than {Limits.MaxTotalBytes} bytes.");
            }
        }
    }
}

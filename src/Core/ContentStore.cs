using System.Security.Cryptography;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Core;

public sealed class ContentStoreOptions
{
    public const string Section = "Carml:ContentStore";

    /// <summary>Directory that holds the files, named by their SHA-256. Relative paths are under the data directory.</summary>
    public string Root { get; set; } = "artifacts";
}

/// <summary>The result of storing a file: its SHA-256, size, and whether this call added it.</summary>
public sealed record StoredContent(string Sha256, long SizeBytes, bool Created);

/// <summary>
/// A content-addressed file store: each file lives at <c>sha256/ab/abcdef…</c> under the root. Writes stream to a
/// temporary file while hashing and are renamed into place, so readers never see partial files; files already on disk
/// (finished uploads, downloads) are imported by rename, without a second copy.
/// </summary>
public sealed class ContentStore
{
    private readonly string _root;
    private readonly string _staging;

    public ContentStore(IOptions<ContentStoreOptions> options)
        : this(options.Value.Root)
    {
    }

    public ContentStore(string root)
    {
        _root = Path.GetFullPath(root);
        _staging = Path.Combine(_root, "staging");
        Directory.CreateDirectory(_staging);
        SweepStaging(StaleStagingAge);
    }

    /// <summary>
    /// Staging files older than this were left by a process that died mid-write or mid-import (a live write finishes
    /// in far less); they are deleted when a store opens.
    /// </summary>
    public static readonly TimeSpan StaleStagingAge = TimeSpan.FromDays(1);

    /// <summary>Deletes staging files last written more than <paramref name="olderThan"/> ago; returns how many.</summary>
    public int SweepStaging(TimeSpan olderThan)
    {
        var cutoff = DateTime.UtcNow - olderThan;
        var deleted = 0;
        foreach (var file in new DirectoryInfo(_staging).EnumerateFiles())
        {
            try
            {
                if (file.LastWriteTimeUtc < cutoff)
                {
                    file.Delete();
                    deleted++;
                }
            }
            catch (IOException)
            {
                // Another process is sweeping or still using it: leave it.
            }
            catch (UnauthorizedAccessException)
            {
                // Not ours to delete.
            }
        }

        return deleted;
    }

    public string Root => _root;

    /// <summary>Streams <paramref name="content"/> into the store, at most <paramref name="maxBytes"/> bytes.</summary>
    public async Task<StoredContent> PutAsync(Stream content, long maxBytes = long.MaxValue, CancellationToken cancellationToken = default)
    {
        var temp = Path.Combine(_staging, Guid.NewGuid().ToString("N"));
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long size = 0;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                var buffer = new byte[81920];
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    size += read;
                    if (size > maxBytes)
                    {
                        throw new ContentTooLargeException(maxBytes);
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }

                await file.FlushAsync(cancellationToken);
            }

            var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
            var target = PathOf(sha);
            return new StoredContent(sha, size, Created: MoveIntoPlace(temp, target));
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>
    /// Takes the file at <paramref name="sourcePath"/> into the store by renaming it, without copying its bytes: it is
    /// renamed into the staging directory and from there to its address, so a crash at any point leaves at most a
    /// staging file, never a partial blob. When the store already holds the content, that blob wins and the source is
    /// deleted; concurrent imports of the same content are safe. A source on another file system is copied into staging
    /// (<see cref="File.Move(string, string)"/> falls back to copy and delete), then renamed.
    /// </summary>
    /// <param name="sourcePath">The file to take; on success it no longer exists at this path.</param>
    /// <param name="computedSha256">
    /// The file's SHA-256 when this process already computed it from the very bytes it wrote (while receiving them).
    /// Never pass a hash a client declared: the store trusts it as the file's address. <c>null</c> hashes the file once.
    /// </param>
    public async Task<StoredContent> ImportAsync(string sourcePath, string? computedSha256 = null, CancellationToken cancellationToken = default)
    {
        if (computedSha256 is not null && !ManifestValidator.IsSha256(computedSha256))
        {
            throw new ArgumentException($"'{computedSha256}' is not a lowercase hex SHA-256.", nameof(computedSha256));
        }

        var sha = computedSha256 ?? await Sha256OfFileAsync(sourcePath, cancellationToken);
        var target = PathOf(sha);
        if (File.Exists(target))
        {
            File.Delete(sourcePath);
            return new StoredContent(sha, new FileInfo(target).Length, Created: false);
        }

        var staged = Path.Combine(_staging, Guid.NewGuid().ToString("N"));
        try
        {
            File.Move(sourcePath, staged);
            var size = new FileInfo(staged).Length;
            return new StoredContent(sha, size, Created: MoveIntoPlace(staged, target));
        }
        finally
        {
            if (File.Exists(staged))
            {
                File.Delete(staged);
            }
        }
    }

    /// <summary>
    /// Renames a staged file to its address unless the content is already there; true when this call put it there.
    /// "Created" decides who may delete the blob again when a registration fails, so exactly one of several concurrent
    /// writers of one content may see true: .NET's no-overwrite move is not atomic on every file system (two moves of one
    /// target were seen succeeding), so writers in this process take a lock per address first.
    /// </summary>
    private static bool MoveIntoPlace(string staged, string target)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        lock (Stripes[(uint)StringComparer.Ordinal.GetHashCode(target) % (uint)Stripes.Length])
        {
            if (File.Exists(target))
            {
                return false; // another writer of the same content won; its blob is identical
            }

            try
            {
                File.Move(staged, target, overwrite: false);
                return true;
            }
            catch (IOException) when (File.Exists(target))
            {
                return false; // another process won the race
            }
        }
    }

    private static readonly Lock[] Stripes = Enumerable.Range(0, 64).Select(_ => new Lock()).ToArray();

    /// <summary>The SHA-256 of a file, read once, as lowercase hex.</summary>
    public static async Task<string> Sha256OfFileAsync(string path, CancellationToken cancellationToken = default)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken));
    }

    public Task<StoredContent> PutAsync(byte[] content, CancellationToken cancellationToken = default) =>
        PutAsync(new MemoryStream(content, writable: false), long.MaxValue, cancellationToken);

    public bool Exists(string sha256) => ManifestValidator.IsSha256(sha256) && File.Exists(PathOf(sha256));

    /// <summary>The file's path; throws <see cref="FileNotFoundException"/> when the store lacks it.</summary>
    public string GetPath(string sha256)
    {
        if (!Exists(sha256))
        {
            throw new FileNotFoundException($"The content store has no file with SHA-256 {sha256}.");
        }

        return PathOf(sha256);
    }

    public long SizeOf(string sha256) => new FileInfo(GetPath(sha256)).Length;

    public bool Delete(string sha256)
    {
        if (!Exists(sha256))
        {
            return false;
        }

        File.Delete(PathOf(sha256));
        return true;
    }

    private string PathOf(string sha256) => Path.Combine(_root, "sha256", sha256[..2], sha256);
}

public sealed class ContentTooLargeException(long maxBytes)
    : Exception($"The content is larger than the limit of {maxBytes} bytes.")
{
    public long MaxBytes { get; } = maxBytes;
}

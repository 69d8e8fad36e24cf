using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Core;

public sealed class UploadOptions
{
    public const string Section = "Carml:Uploads";

    /// <summary>Key of the <see cref="TimeProvider"/> that decides upload expiry (tests replace it with a manual clock).</summary>
    public const string ClockKey = "carml-uploads";

    /// <summary>Directory for partial uploads; every gateway must see the same one so uploads can move between them.</summary>
    public string Root { get; set; } = "uploads";

    /// <summary>Largest upload accepted (tus <c>Tus-Max-Size</c>); default 10 GiB.</summary>
    public long MaxSize { get; set; } = 10L * 1024 * 1024 * 1024;

    /// <summary>How long an unfinished upload lives after creation before it is purged.</summary>
    public TimeSpan Expiration { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often expired uploads are purged.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A request that holds an upload's append lease longer than this is presumed dead.</summary>
    public TimeSpan LeaseTimeout { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// Where the bytes of unfinished uploads live: one file per upload, <c>&lt;root&gt;/&lt;id&gt;.part</c>. It also keeps,
/// for uploads appended through this process, the running SHA-256 of the bytes so far, so a finished upload is
/// addressed without reading it again. That state lives only as long as the process: an upload resumed elsewhere or
/// after a restart is hashed once when it finishes instead.
/// </summary>
public sealed class UploadFileStore
{
    /// <summary>Running digests kept at most; beyond this (abandoned uploads), new uploads are hashed when they finish.</summary>
    public const int MaxDigests = 1024;

    private readonly ConcurrentDictionary<string, UploadDigest> _digests = new(StringComparer.Ordinal);
    private long _keeps;

    public UploadFileStore(IOptions<UploadOptions> options)
    {
        Root = Path.GetFullPath(options.Value.Root);
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    /// <summary>Upload ids are 32 lowercase hex digits; anything else names no upload (and no path).</summary>
    public static bool IsUploadId(string id) => HexIds.IsValid(id);

    public static string NewId() => Guid.NewGuid().ToString("N");

    public string PathOf(string id) => IsUploadId(id)
        ? Path.Combine(Root, id + ".part")
        : throw new ArgumentException($"'{id}' is not an upload id.", nameof(id));

    /// <summary>
    /// Opens the file for appending at <paramref name="offset"/>, cutting any bytes a crashed request left past it. The
    /// file is opened exclusively: a request still writing after its lease was presumed dead keeps others out (409)
    /// until it ends, so it can never overwrite bytes another request appended and hashed.
    /// </summary>
    public FileStream OpenForAppend(string id, long offset)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(PathOf(id), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 81920, useAsync: true);
        }
        catch (IOException e) when (IsHeldByAnother(e))
        {
            throw new Interfaces.UploadException(
                Interfaces.UploadErrorKind.Busy, $"Another request is still writing upload {id}; retry when it has ended.");
        }

        if (stream.Length < offset)
        {
            var length = stream.Length;
            stream.Dispose();
            throw new Interfaces.UploadException(
                Interfaces.UploadErrorKind.Gone,
                $"Upload {id} recorded {offset} bytes but its file holds {length}; the bytes are lost, start a new upload.");
        }

        if (stream.Length > offset)
        {
            stream.SetLength(offset);
        }

        stream.Position = offset;
        return stream;
    }

    /// <summary>
    /// Whether opening failed because another handle holds the file's lock (EWOULDBLOCK from flock on Linux and macOS, a
    /// sharing or lock violation on Windows), not because of a server fault such as too many open files.
    /// </summary>
    private static bool IsHeldByAnother(IOException e) =>
        e.HResult is 11 or 35 or unchecked((int)0x80070020) or unchecked((int)0x80070021);

    /// <summary>
    /// Takes the running digest of the upload's first <paramref name="offset"/> bytes, or starts one at offset 0; null
    /// when this process holds none for that offset. The caller appends exactly the bytes it writes and hands it back
    /// with <see cref="KeepDigest"/> once the new offset is recorded, or disposes it.
    /// </summary>
    public UploadDigest? TakeDigest(string id, long offset)
    {
        if (_digests.TryRemove(id, out var digest))
        {
            if (digest.Offset == offset)
            {
                return digest;
            }

            digest.Dispose();
        }

        if (offset != 0)
        {
            return null;
        }

        if (_digests.Count >= MaxDigests)
        {
            // Abandoned, terminated elsewhere or expired uploads: the one kept longest without an append makes room.
            var oldest = _digests.MinBy(d => d.Value.KeptAt);
            ForgetDigest(oldest.Key);
        }

        return new UploadDigest();
    }

    /// <summary>Keeps a digest whose bytes are all recorded in the upload's offset, for the next append or the finish.</summary>
    public void KeepDigest(string id, UploadDigest digest)
    {
        digest.KeptAt = Interlocked.Increment(ref _keeps);
        if (!_digests.TryAdd(id, digest))
        {
            digest.Dispose();
        }
    }

    /// <summary>Drops the running digest of an upload that ends here without finishing (terminated, expired).</summary>
    public void ForgetDigest(string id)
    {
        if (_digests.TryRemove(id, out var digest))
        {
            digest.Dispose();
        }
    }

    public void Delete(string id)
    {
        ForgetDigest(id);

        var path = PathOf(id);
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}

/// <summary>The SHA-256 of an upload's bytes from offset 0 up to <see cref="Offset"/>, computed as they were written.</summary>
public sealed class UploadDigest : IDisposable
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long Offset { get; private set; }

    /// <summary>The store's count of hand-backs when it was last handed back: lowest = kept longest, for making room.</summary>
    internal long KeptAt { get; set; }

    public void Append(ReadOnlySpan<byte> bytes)
    {
        _hash.AppendData(bytes);
        Offset += bytes.Length;
    }

    /// <summary>The SHA-256 of the bytes appended, as lowercase hex; the digest is spent afterwards.</summary>
    public string Finish() => Convert.ToHexStringLower(_hash.GetHashAndReset());

    public void Dispose() => _hash.Dispose();
}

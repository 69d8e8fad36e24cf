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

/// <summary>Where the bytes of unfinished uploads live: one file per upload, <c>&lt;root&gt;/&lt;id&gt;.part</c>.</summary>
public sealed class UploadFileStore
{
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

    /// <summary>Opens the file for appending at <paramref name="offset"/>, cutting any bytes a crashed request left past it.</summary>
    public FileStream OpenForAppend(string id, long offset)
    {
        var stream = new FileStream(PathOf(id), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 81920, useAsync: true);
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

    public void Delete(string id)
    {
        var path = PathOf(id);
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}

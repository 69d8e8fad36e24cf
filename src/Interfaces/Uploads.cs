namespace Carml.Orleans.Interfaces;

[GenerateSerializer]
[Alias("carml.UploadState")]
public enum UploadState
{
    /// <summary>Accepting bytes.</summary>
    Receiving = 0,

    /// <summary>Every declared byte arrived; the file is in the content store.</summary>
    Completed = 1,

    /// <summary>Deleted by the client (tus termination).</summary>
    Terminated = 2,

    /// <summary>Past its expiry before completing; its bytes were purged.</summary>
    Expired = 3,
}

/// <summary>A resumable upload as the tus protocol and the management API see it.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.UploadInfo")]
public sealed record UploadInfo
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public long? Length { get; init; }
    [Id(2)] public long Offset { get; init; }
    [Id(3)] public UploadState State { get; init; }
    [Id(4)] public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
    [Id(5)] public string? RawMetadata { get; init; }
    [Id(6)] public DateTimeOffset CreatedAt { get; init; }
    [Id(7)] public DateTimeOffset ExpiresAt { get; init; }
    [Id(8)] public string? Sha256 { get; init; }
    [Id(9)] public string? Owner { get; init; }

    public bool LengthDeferred => Length is null;
}

/// <summary>What a client declares when it creates an upload.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.UploadCreation")]
public sealed record UploadCreation(
    [property: Id(0)] long? Length,
    [property: Id(1)] IReadOnlyDictionary<string, string> Metadata,
    [property: Id(2)] string? RawMetadata,
    [property: Id(3)] DateTimeOffset ExpiresAt,
    [property: Id(4)] string? Owner);

/// <summary>Permission to append at <see cref="Offset"/>; only one request holds it at a time.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.UploadAppendLease")]
public sealed record UploadAppendLease(
    [property: Id(0)] Guid Token,
    [property: Id(1)] long Offset,
    [property: Id(2)] long? Length);

/// <summary>Why an upload operation was refused; the tus endpoints map each to its status.</summary>
[GenerateSerializer]
[Alias("carml.UploadErrorKind")]
public enum UploadErrorKind
{
    NotFound = 1,
    Gone = 2,
    OffsetMismatch = 3,
    Busy = 4,
    InvalidArgument = 5,
    TooLarge = 6,
}

[GenerateSerializer]
[Alias("carml.UploadException")]
public sealed class UploadException : Exception
{
    public UploadException()
    {
    }

    public UploadException(UploadErrorKind kind, string message)
        : base(message) => Kind = kind;

    [Id(0)] public UploadErrorKind Kind { get; private set; }
}

/// <summary>
/// One tus upload. Key: the upload id. It owns the authoritative offset: a request appends only under a lease, so two
/// requests never write the same upload at once, and a restart resumes from the last recorded offset.
/// </summary>
[Alias("carml.IUploadGrain")]
public interface IUploadGrain : IGrainWithStringKey
{
    [Alias("Create")]
    Task<UploadInfo> CreateAsync(UploadCreation creation);

    /// <summary>The upload, or null when it never existed. Terminated and expired uploads are returned with their state.</summary>
    [Alias("Get")]
    Task<UploadInfo?> GetAsync();

    /// <summary>
    /// Starts an append at <paramref name="offset"/>, declaring the length if it was deferred. Throws
    /// <see cref="UploadException"/>: NotFound, Gone, OffsetMismatch, Busy, InvalidArgument, TooLarge.
    /// </summary>
    [Alias("BeginAppend")]
    Task<UploadAppendLease> BeginAppendAsync(long offset, long? declaredLength);

    /// <summary>Records where the file ends after an append (the old offset when the append was refused).</summary>
    [Alias("EndAppend")]
    Task<UploadInfo> EndAppendAsync(Guid token, long newOffset);

    /// <summary>Records the completed file's place in the content store.</summary>
    [Alias("Complete")]
    Task<UploadInfo> CompleteAsync(string sha256);

    [Alias("Terminate")]
    Task TerminateAsync();

    /// <summary>Purges the bytes of an upload past its expiry that never completed. Returns true when it did.</summary>
    [Alias("ExpireIfDue")]
    Task<bool> ExpireIfDueAsync();
}

/// <summary>The uploads still receiving, with their expiry, so purging never scans grains. Key: <c>default</c>.</summary>
[Alias("carml.IUploadIndexGrain")]
public interface IUploadIndexGrain : IGrainWithStringKey
{
    public const string DefaultKey = "default";

    [Alias("Track")]
    Task TrackAsync(string uploadId, DateTimeOffset expiresAt);

    [Alias("Forget")]
    Task ForgetAsync(string uploadId);

    [Alias("Due")]
    Task<IReadOnlyList<string>> DueAsync(DateTimeOffset now, int limit);
}

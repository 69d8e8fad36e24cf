using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Grains;

[GenerateSerializer]
[Alias("carml.UploadGrainState")]
public sealed class UploadGrainState
{
    [Id(0)] public UploadInfo? Upload { get; set; }
}

/// <summary>
/// The authoritative state of one tus upload. Appends happen under a lease so concurrent requests cannot interleave;
/// the offset is persisted after every append, so an upload resumes after any gateway or silo restart.
/// </summary>
public sealed partial class UploadGrain(
    [PersistentState("upload", StorageNames.Models)] IPersistentState<UploadGrainState> state,
    UploadFileStore files,
    IOptions<UploadOptions> options,
    [FromKeyedServices(UploadOptions.ClockKey)] TimeProvider time,
    ILogger<UploadGrain> logger) : Grain, IUploadGrain
{
    private (Guid Token, DateTimeOffset Since)? _lease;

    private string Id => this.GetPrimaryKeyString();

    private IUploadIndexGrain Index => GrainFactory.GetGrain<IUploadIndexGrain>(IUploadIndexGrain.DefaultKey);

    public async Task<UploadInfo> CreateAsync(UploadCreation creation)
    {
        if (state.State.Upload is not null)
        {
            throw new UploadException(UploadErrorKind.InvalidArgument, $"Upload {Id} already exists.");
        }

        var upload = new UploadInfo
        {
            Id = Id,
            Length = creation.Length,
            Offset = 0,
            State = UploadState.Receiving,
            Metadata = creation.Metadata,
            RawMetadata = creation.RawMetadata,
            CreatedAt = time.GetUtcNow(),
            ExpiresAt = creation.ExpiresAt,
            Owner = creation.Owner,
        };
        state.State.Upload = upload;
        await state.WriteStateAsync();
        await Index.TrackAsync(Id, upload.ExpiresAt);
        LogCreated(logger, Id, upload.Length);
        return upload;
    }

    public Task<UploadInfo?> GetAsync() => Task.FromResult(state.State.Upload);

    public async Task<UploadAppendLease> BeginAppendAsync(long offset, long? declaredLength)
    {
        var upload = Receiving();
        if (_lease is { } lease && time.GetUtcNow() - lease.Since < options.Value.LeaseTimeout)
        {
            throw new UploadException(UploadErrorKind.Busy, $"Another request is appending to upload {Id}; retry when it ends.");
        }

        if (offset != upload.Offset)
        {
            throw new UploadException(UploadErrorKind.OffsetMismatch, $"Upload-Offset {offset} does not match the upload's offset {upload.Offset}.");
        }

        if (declaredLength is { } length)
        {
            if (upload.Length is { } known && known != length)
            {
                throw new UploadException(UploadErrorKind.InvalidArgument, $"Upload-Length {length} differs from the declared {known}; it cannot change.");
            }

            if (length < upload.Offset)
            {
                throw new UploadException(UploadErrorKind.InvalidArgument, $"Upload-Length {length} is less than the {upload.Offset} bytes already received.");
            }

            if (length > options.Value.MaxSize)
            {
                throw new UploadException(UploadErrorKind.TooLarge, $"Upload-Length {length} is larger than the server's limit of {options.Value.MaxSize} bytes.");
            }

            if (upload.Length is null)
            {
                upload = upload with { Length = length };
                state.State.Upload = upload;
                await state.WriteStateAsync();
            }
        }

        var token = Guid.NewGuid();
        _lease = (token, time.GetUtcNow());

        // The lease lives in memory: keep the grain while a long body streams, or the offset could not be recorded.
        DelayDeactivation(options.Value.LeaseTimeout);
        return new UploadAppendLease(token, upload.Offset, upload.Length);
    }

    public async Task<UploadInfo> EndAppendAsync(Guid token, long newOffset)
    {
        if (_lease?.Token != token)
        {
            throw new UploadException(UploadErrorKind.Busy, $"The append lease on upload {Id} was lost (it timed out and another request took it).");
        }

        _lease = null;
        var upload = state.State.Upload!;
        if (newOffset < upload.Offset || (upload.Length is { } length && newOffset > length))
        {
            throw new UploadException(UploadErrorKind.InvalidArgument, $"Offset {newOffset} is outside the upload ({upload.Offset}..{upload.Length}).");
        }

        if (newOffset != upload.Offset)
        {
            upload = upload with { Offset = newOffset };
            state.State.Upload = upload;
            await state.WriteStateAsync();
        }

        return upload;
    }

    public async Task<UploadInfo> CompleteAsync(string sha256)
    {
        var upload = state.State.Upload ?? throw NotFound();
        if (upload.State == UploadState.Completed)
        {
            return upload;
        }

        if (upload.Length != upload.Offset)
        {
            throw new UploadException(UploadErrorKind.InvalidArgument, $"Upload {Id} has {upload.Offset} of {upload.Length} bytes; it is not complete.");
        }

        upload = upload with { State = UploadState.Completed, Sha256 = sha256 };
        state.State.Upload = upload;
        await state.WriteStateAsync();
        await Index.ForgetAsync(Id);
        LogCompleted(logger, Id, upload.Offset, sha256);
        return upload;
    }

    public async Task TerminateAsync()
    {
        var upload = state.State.Upload ?? throw NotFound();
        if (upload.State is UploadState.Terminated or UploadState.Expired)
        {
            throw new UploadException(UploadErrorKind.Gone, $"Upload {Id} was already {upload.State.ToString().ToLowerInvariant()}.");
        }

        files.Delete(Id);
        _lease = null;
        state.State.Upload = upload with { State = UploadState.Terminated };
        await state.WriteStateAsync();
        await Index.ForgetAsync(Id);
    }

    public async Task<bool> ExpireIfDueAsync()
    {
        if (state.State.Upload is not { State: UploadState.Receiving } upload || upload.ExpiresAt > time.GetUtcNow())
        {
            return false;
        }

        files.Delete(Id);
        _lease = null;
        state.State.Upload = upload with { State = UploadState.Expired };
        await state.WriteStateAsync();
        await Index.ForgetAsync(Id);
        LogExpired(logger, Id, upload.Offset);
        return true;
    }

    private UploadInfo Receiving()
    {
        var upload = state.State.Upload ?? throw NotFound();
        return upload.State switch
        {
            UploadState.Receiving when upload.ExpiresAt <= time.GetUtcNow() =>
                throw new UploadException(UploadErrorKind.Gone, $"Upload {Id} expired at {upload.ExpiresAt:O}."),
            UploadState.Receiving => upload,
            UploadState.Completed => throw new UploadException(UploadErrorKind.OffsetMismatch, $"Upload {Id} is already complete ({upload.Offset} bytes)."),
            _ => throw new UploadException(UploadErrorKind.Gone, $"Upload {Id} was {upload.State.ToString().ToLowerInvariant()}."),
        };
    }

    private UploadException NotFound() => new(UploadErrorKind.NotFound, $"There is no upload {Id}.");

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Upload {Upload} created (length {Length})")]
    private static partial void LogCreated(ILogger logger, string upload, long? length);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Information, Message = "Upload {Upload} completed: {Bytes} bytes, sha256 {Sha256}")]
    private static partial void LogCompleted(ILogger logger, string upload, long bytes, string sha256);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Information, Message = "Upload {Upload} expired with {Bytes} bytes received; purged")]
    private static partial void LogExpired(ILogger logger, string upload, long bytes);
}

[GenerateSerializer]
[Alias("carml.UploadIndexState")]
public sealed class UploadIndexState
{
    [Id(0)] public Dictionary<string, DateTimeOffset> Receiving { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>Uploads still receiving, with their expiry: what the purge looks at.</summary>
public sealed class UploadIndexGrain(
    [PersistentState("uploads", StorageNames.Models)] IPersistentState<UploadIndexState> index) : Grain, IUploadIndexGrain
{
    public async Task TrackAsync(string uploadId, DateTimeOffset expiresAt)
    {
        index.State.Receiving[uploadId] = expiresAt;
        await index.WriteStateAsync();
    }

    public async Task ForgetAsync(string uploadId)
    {
        if (index.State.Receiving.Remove(uploadId))
        {
            await index.WriteStateAsync();
        }
    }

    public Task<IReadOnlyList<string>> DueAsync(DateTimeOffset now, int limit) =>
        Task.FromResult<IReadOnlyList<string>>(index.State.Receiving
            .Where(kv => kv.Value <= now)
            .OrderBy(kv => kv.Value)
            .Take(limit)
            .Select(kv => kv.Key)
            .ToArray());
}

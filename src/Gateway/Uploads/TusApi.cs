using System.Security.Cryptography;
using Carml.Orleans.Core;
using Carml.Orleans.Gateway.Security;
using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Uploads;

/// <summary>
/// A tus 1.0.0 server at <c>/api/uploads/</c>: core protocol plus creation, creation-with-upload,
/// creation-defer-length, termination, expiration and checksum, with CORS for browser clients. Bytes stream straight
/// into the upload's file; the <see cref="IUploadGrain"/> owns the offset, so an upload resumes on any gateway that
/// shares the upload directory, and after restarts.
/// </summary>
public static partial class TusApi
{
    public const string Prefix = "/api/uploads";

    public static IEndpointRouteBuilder MapTusUploads(this IEndpointRouteBuilder endpoints)
    {
        var uploads = endpoints.MapGroup(Prefix).WithTags("Uploads (tus 1.0.0)").RequireUploadAccess();

        // Every refusal from an upload grain (lost lease, gone, offset moved) answers with its tus status, wherever
        // in a handler it happens.
        uploads.AddEndpointFilter(async (context, next) =>
        {
            try
            {
                return await next(context);
            }
            catch (UploadException e)
            {
                return Refused(e);
            }
        });
        uploads.MapMethods("/", ["OPTIONS"], Options).ExcludeFromDescription();
        uploads.MapMethods("/{id}", ["OPTIONS"], Options).ExcludeFromDescription();
        uploads.MapPost("/", CreateAsync).WithSummary("tus creation (and creation-with-upload).");
        uploads.MapMethods("/{id}", ["HEAD"], HeadAsync).WithSummary("tus: the upload's offset and length.");
        uploads.MapPatch("/{id}", PatchAsync).WithSummary("tus: append bytes at Upload-Offset.");
        uploads.MapDelete("/{id}", DeleteAsync).WithSummary("tus termination.");
        uploads.MapGet("/{id}", GetAsync).WithSummary("The upload as JSON: offset, length, metadata, state, sha256 when complete.");
        return endpoints;
    }

    /// <summary>Adds the headers every tus response carries (and CORS headers for browsers).</summary>
    private static void CommonHeaders(HttpContext context)
    {
        var headers = context.Response.Headers;
        headers[TusProtocol.TusResumable] = TusProtocol.Version;
        if (context.Request.Headers.Origin.Count > 0)
        {
            headers.AccessControlAllowOrigin = "*";
            headers.AccessControlExposeHeaders = TusProtocol.CorsExposeHeaders;
        }
    }

    private static IResult Options(HttpContext context, IOptions<UploadOptions> options)
    {
        CommonHeaders(context);
        var headers = context.Response.Headers;
        headers[TusProtocol.TusVersion] = TusProtocol.Version;
        headers[TusProtocol.TusExtension] = TusProtocol.Extensions;
        headers[TusProtocol.TusMaxSize] = options.Value.MaxSize.ToString(System.Globalization.CultureInfo.InvariantCulture);
        headers[TusProtocol.TusChecksumAlgorithm] = TusProtocol.ChecksumAlgorithms;
        if (context.Request.Headers.Origin.Count > 0)
        {
            headers.AccessControlAllowMethods = "POST, GET, HEAD, PATCH, DELETE, OPTIONS";
            headers.AccessControlAllowHeaders = TusProtocol.CorsAllowHeaders;
            headers.AccessControlMaxAge = "86400";
        }

        return Results.NoContent();
    }

    private static async Task<IResult> CreateAsync(
        HttpContext context, IGrainFactory grains, UploadFileStore files, ContentStore store, IOptions<UploadOptions> options,
        [FromKeyedServices(UploadOptions.ClockKey)] TimeProvider time)
    {
        CommonHeaders(context);
        if (Precondition(context) is { } failed)
        {
            return failed;
        }

        var request = context.Request;
        long? length;
        Dictionary<string, string> metadata;
        try
        {
            length = TusProtocol.ParseLength(request.Headers[TusProtocol.UploadLength].FirstOrDefault(), TusProtocol.UploadLength);
            metadata = TusProtocol.ParseMetadata(request.Headers[TusProtocol.UploadMetadata].FirstOrDefault());
        }
        catch (FormatException e)
        {
            return Text(StatusCodes.Status400BadRequest, e.Message);
        }

        var deferred = request.Headers[TusProtocol.UploadDeferLength].FirstOrDefault();
        if (length is null && deferred != "1")
        {
            return Text(StatusCodes.Status400BadRequest, deferred is null
                ? "Upload-Length is required (or Upload-Defer-Length: 1 to give it later)."
                : $"Upload-Defer-Length must be 1, got '{deferred}'.");
        }

        if (length is not null && deferred is not null)
        {
            return Text(StatusCodes.Status400BadRequest, "Give Upload-Length or Upload-Defer-Length, not both.");
        }

        if (length > options.Value.MaxSize)
        {
            return Text(StatusCodes.Status413PayloadTooLarge, $"Upload-Length {length} is larger than Tus-Max-Size {options.Value.MaxSize}.");
        }

        var withUpload = request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0;
        if (withUpload && !IsOffsetStream(request))
        {
            return Text(StatusCodes.Status415UnsupportedMediaType, $"A body sent with the creation request must be {TusProtocol.OffsetContentType}.");
        }

        var id = UploadFileStore.NewId();
        var grain = grains.GetGrain<IUploadGrain>(id);
        var upload = await grain.CreateAsync(new UploadCreation(
            length, metadata, request.Headers[TusProtocol.UploadMetadata].FirstOrDefault(), time.GetUtcNow() + options.Value.Expiration, RequestPrincipal.Owner));
        files.OpenForAppend(id, 0).Dispose();

        context.Response.Headers.Location = $"{Prefix}/{id}";
        context.Response.Headers[TusProtocol.UploadExpires] = TusProtocol.FormatExpires(upload.ExpiresAt);
        if (withUpload)
        {
            var appended = await AppendAsync(context, grain, files, store, options.Value, offset: 0, declaredLength: null);
            if (appended.Failure is { } failure)
            {
                // The upload exists; the client resumes it with HEAD + PATCH. Report what went wrong with the body.
                return failure;
            }

            context.Response.Headers[TusProtocol.UploadOffset] = Format(appended.Upload!.Offset);
        }
        else if (length == 0)
        {
            await FinishAsync(grain, files, store, id, digest: null);
        }

        return Results.StatusCode(StatusCodes.Status201Created);
    }

    private static async Task<IResult> HeadAsync(
        string id, HttpContext context, IGrainFactory grains, [FromKeyedServices(UploadOptions.ClockKey)] TimeProvider time)
    {
        CommonHeaders(context);
        context.Response.Headers.CacheControl = "no-store";
        if (Precondition(context) is { } failed)
        {
            return failed;
        }

        var (upload, missing) = await FindAsync(id, grains, time);
        if (missing is not null)
        {
            return missing;
        }

        var headers = context.Response.Headers;
        headers[TusProtocol.UploadOffset] = Format(upload!.Offset);
        if (upload.Length is { } length)
        {
            headers[TusProtocol.UploadLength] = Format(length);
        }
        else
        {
            headers[TusProtocol.UploadDeferLength] = "1";
        }

        if (upload.RawMetadata is { Length: > 0 } raw)
        {
            headers[TusProtocol.UploadMetadata] = raw;
        }

        if (upload.State == UploadState.Receiving)
        {
            headers[TusProtocol.UploadExpires] = TusProtocol.FormatExpires(upload.ExpiresAt);
        }

        return Results.Ok();
    }

    private static async Task<IResult> PatchAsync(
        string id, HttpContext context, IGrainFactory grains, UploadFileStore files, ContentStore store, IOptions<UploadOptions> options)
    {
        CommonHeaders(context);
        if (Precondition(context) is { } failed)
        {
            return failed;
        }

        if (!UploadFileStore.IsUploadId(id))
        {
            return Text(StatusCodes.Status404NotFound, $"There is no upload {id}.");
        }

        if (!IsOffsetStream(context.Request))
        {
            return Text(StatusCodes.Status415UnsupportedMediaType, $"PATCH bodies must be {TusProtocol.OffsetContentType}.");
        }

        long? offset, declared;
        try
        {
            offset = TusProtocol.ParseLength(context.Request.Headers[TusProtocol.UploadOffset].FirstOrDefault(), TusProtocol.UploadOffset);
            declared = TusProtocol.ParseLength(context.Request.Headers[TusProtocol.UploadLength].FirstOrDefault(), TusProtocol.UploadLength);
        }
        catch (FormatException e)
        {
            return Text(StatusCodes.Status400BadRequest, e.Message);
        }

        if (offset is null)
        {
            return Text(StatusCodes.Status400BadRequest, "Upload-Offset is required.");
        }

        var appended = await AppendAsync(context, grains.GetGrain<IUploadGrain>(id), files, store, options.Value, offset.Value, declared);
        if (appended.Failure is { } failure)
        {
            return failure;
        }

        context.Response.Headers[TusProtocol.UploadOffset] = Format(appended.Upload!.Offset);
        if (appended.Upload.State == UploadState.Receiving)
        {
            context.Response.Headers[TusProtocol.UploadExpires] = TusProtocol.FormatExpires(appended.Upload.ExpiresAt);
        }

        return Results.NoContent();
    }

    private static async Task<IResult> DeleteAsync(string id, HttpContext context, IGrainFactory grains, UploadFileStore files)
    {
        CommonHeaders(context);
        if (Precondition(context) is { } failed)
        {
            return failed;
        }

        if (!UploadFileStore.IsUploadId(id))
        {
            return Text(StatusCodes.Status404NotFound, $"There is no upload {id}.");
        }

        await grains.GetGrain<IUploadGrain>(id).TerminateAsync();
        files.ForgetDigest(id); // the grain deletes the file where it runs; this gateway's running digest goes here
        return Results.NoContent();
    }

    private static async Task<IResult> GetAsync(
        string id, HttpContext context, IGrainFactory grains, [FromKeyedServices(UploadOptions.ClockKey)] TimeProvider time)
    {
        CommonHeaders(context);
        var (upload, missing) = await FindAsync(id, grains, time);
        return missing ?? Results.Ok(UploadDto.From(upload!));
    }

    private sealed record Appended(UploadInfo? Upload, IResult? Failure);

    /// <summary>
    /// Appends the request body at <paramref name="offset"/> under the upload's lease. Without a checksum, bytes that
    /// arrived before a disconnect are kept (the client resumes from them); with one, the whole body is verified first
    /// and nothing is kept on a mismatch (460).
    /// </summary>
    private static async Task<Appended> AppendAsync(
        HttpContext context, IUploadGrain grain, UploadFileStore files, ContentStore store, UploadOptions options, long offset, long? declaredLength)
    {
        (HashAlgorithmName Algorithm, byte[] Digest)? checksum;
        try
        {
            checksum = TusProtocol.ParseChecksum(context.Request.Headers[TusProtocol.UploadChecksum].FirstOrDefault());
        }
        catch (FormatException e)
        {
            return new Appended(null, Text(StatusCodes.Status400BadRequest, e.Message));
        }

        UploadAppendLease lease;
        try
        {
            lease = await grain.BeginAppendAsync(offset, declaredLength);
        }
        catch (UploadException e)
        {
            return new Appended(null, Refused(e));
        }

        // tus bodies are bounded by the upload's own length and Tus-Max-Size, not by the gateway's request limit.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = null;
        }

        var room = (lease.Length ?? options.MaxSize) - lease.Offset;
        if (context.Request.ContentLength > room)
        {
            await grain.EndAppendAsync(lease.Token, lease.Offset);
            return new Appended(null, Text(StatusCodes.Status413PayloadTooLarge,
                $"The body of {context.Request.ContentLength} bytes does not fit: {room} bytes remain of the upload."));
        }

        long written = 0;
        IResult? failure = null;
        var id = grain.GetPrimaryKeyString();
        FileStream file;
        try
        {
            file = files.OpenForAppend(id, lease.Offset);
        }
        catch (UploadException e)
        {
            await grain.EndAppendAsync(lease.Token, lease.Offset);
            return new Appended(null, Refused(e));
        }

        // The running SHA-256 of the upload (when this process has it at this offset): it sees exactly the bytes kept, so
        // the finished upload needs no second read.
        var digest = files.TakeDigest(id, lease.Offset);
        try
        {
            await using (file)
            {
                using var hash = checksum is { } c ? IncrementalHash.CreateHash(c.Algorithm) : null;
                var buffer = new byte[81920];
                try
                {
                    int read;
                    while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
                    {
                        if (written + read > room)
                        {
                            failure = Text(StatusCodes.Status413PayloadTooLarge, $"The body is larger than the {room} bytes that remain of the upload.");
                            break;
                        }

                        hash?.AppendData(buffer, 0, read);
                        await file.WriteAsync(buffer.AsMemory(0, read), CancellationToken.None);
                        digest?.Append(buffer.AsSpan(0, read));
                        written += read;
                    }
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or BadHttpRequestException)
                {
                    // The client went away mid-body. Keep what arrived unless it must be verified as a whole.
                    if (checksum is not null)
                    {
                        written = 0;
                    }

                    failure = Text(StatusCodes.Status400BadRequest, "The request body ended early.");
                }

                if (failure is null && checksum is { } expected && !CryptographicOperations.FixedTimeEquals(hash!.GetHashAndReset(), expected.Digest))
                {
                    failure = Text(TusProtocol.ChecksumMismatch, $"Checksum mismatch: the body's {expected.Algorithm.Name} differs from Upload-Checksum; nothing was appended.");
                    written = 0;
                }
                else if (failure is not null && checksum is not null)
                {
                    written = 0;
                }

                if (failure is not null && written == 0)
                {
                    file.SetLength(lease.Offset);
                }

                await file.FlushAsync(CancellationToken.None);
            }

            if (digest is not null && digest.Offset != lease.Offset + written)
            {
                // Bytes it saw were cut again (checksum mismatch, cut-short verified body): hash at the finish instead.
                digest.Dispose();
                digest = null;
            }

            var upload = await grain.EndAppendAsync(lease.Token, lease.Offset + written);
            Core.Telemetry.CarmlTelemetry.UploadBytes.Add(written); // kept bytes only: a rejected body's are truncated away
            if (failure is not null)
            {
                KeepDigest(files, id, upload, ref digest);
                return new Appended(upload, failure);
            }

            if (upload.Length == upload.Offset)
            {
                var finishing = digest;
                digest = null;
                upload = await FinishAsync(grain, files, store, id, finishing);
            }
            else
            {
                KeepDigest(files, id, upload, ref digest);
            }

            return new Appended(upload, null);
        }
        finally
        {
            digest?.Dispose();
        }
    }

    private static void KeepDigest(UploadFileStore files, string id, UploadInfo upload, ref UploadDigest? digest)
    {
        if (digest is not null && digest.Offset == upload.Offset)
        {
            files.KeepDigest(id, digest);
            digest = null;
        }
    }

    /// <summary>
    /// Records a finished upload's SHA-256 (from its running digest, or read once) and moves its file into the content
    /// store: a rename, no second copy. The SHA-256 is recorded first, so a failure in between leaves the part file in
    /// place for <see cref="Management.ModelSourceResolver"/> to import when the upload is used.
    /// </summary>
    private static async Task<UploadInfo> FinishAsync(IUploadGrain grain, UploadFileStore files, ContentStore store, string id, UploadDigest? digest)
    {
        var part = files.PathOf(id);
        UploadInfo upload;
        try
        {
            string sha256;
            using (digest)
            {
                sha256 = digest is not null && digest.Offset == new FileInfo(part).Length
                    ? digest.Finish()
                    : await ContentStore.Sha256OfFileAsync(part);
            }

            upload = await grain.CompleteAsync(sha256);
            await store.ImportAsync(part, sha256);
        }
        catch (IOException e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // A second finishing request (a final PATCH retried after a lost response) found the file already taken
            // by the first one, which completed the upload: the same answer, not a server fault.
            if (await grain.GetAsync() is { State: UploadState.Completed, Sha256: { } finished } completed && store.Exists(finished))
            {
                return completed;
            }

            throw;
        }

        files.Delete(id);
        return upload;
    }

    private static async Task<(UploadInfo? Upload, IResult? Missing)> FindAsync(string id, IGrainFactory grains, TimeProvider time)
    {
        if (!UploadFileStore.IsUploadId(id))
        {
            return (null, Text(StatusCodes.Status404NotFound, $"There is no upload {id}."));
        }

        var upload = await grains.GetGrain<IUploadGrain>(id).GetAsync();
        return upload switch
        {
            null or { State: UploadState.Terminated } => (null, Text(StatusCodes.Status404NotFound, $"There is no upload {id}.")),
            { State: UploadState.Expired } => (null, Text(StatusCodes.Status410Gone, $"Upload {id} expired.")),
            { State: UploadState.Receiving } when upload.ExpiresAt <= time.GetUtcNow() => (null, Text(StatusCodes.Status410Gone, $"Upload {id} expired.")),
            _ => (upload, null),
        };
    }

    private static IResult? Precondition(HttpContext context)
    {
        var version = context.Request.Headers[TusProtocol.TusResumable].FirstOrDefault();
        if (version == TusProtocol.Version)
        {
            return null;
        }

        context.Response.Headers[TusProtocol.TusVersion] = TusProtocol.Version;
        return Text(StatusCodes.Status412PreconditionFailed, version is null
            ? "Tus-Resumable: 1.0.0 is required."
            : $"Tus-Resumable {version} is not supported; this server speaks {TusProtocol.Version}.");
    }

    private static bool IsOffsetStream(HttpRequest request) =>
        string.Equals(request.ContentType?.Split(';')[0].Trim(), TusProtocol.OffsetContentType, StringComparison.OrdinalIgnoreCase);

    private static IResult Refused(UploadException e) => Text(e.Kind switch
    {
        UploadErrorKind.NotFound => StatusCodes.Status404NotFound,
        UploadErrorKind.Gone => StatusCodes.Status410Gone,
        UploadErrorKind.OffsetMismatch or UploadErrorKind.Busy => StatusCodes.Status409Conflict,
        UploadErrorKind.TooLarge => StatusCodes.Status413PayloadTooLarge,
        _ => StatusCodes.Status400BadRequest,
    }, e.Message);

    private static IResult Text(int status, string message) => Results.Text(message, "text/plain", statusCode: status);

    private static string Format(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>An upload as the management API shows it.</summary>
public sealed record UploadDto(
    string Id,
    long? Length,
    long Offset,
    string State,
    IReadOnlyDictionary<string, string> Metadata,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    string? Sha256)
{
    public static UploadDto From(UploadInfo upload) => new(
        upload.Id, upload.Length, upload.Offset, upload.State.ToString().ToLowerInvariant(), upload.Metadata,
        upload.CreatedAt, upload.ExpiresAt, upload.Sha256);
}

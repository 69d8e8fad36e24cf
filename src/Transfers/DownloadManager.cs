using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.S3;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Transfers;

public sealed class DownloadOptions
{
    public const string Section = "Carml:Downloads";

    /// <summary>Where downloaded files are cached, keyed by URL.</summary>
    public string CacheDirectory { get; set; } = "downloads";

    /// <summary>How long a cached download is reused before it is fetched again.</summary>
    public TimeSpan CacheExpiry { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Largest file fetched (default 10 GiB).</summary>
    public long MaxBytes { get; set; } = 10L * 1024 * 1024 * 1024;

    /// <summary>How often an interrupted HTTP transfer is resumed (Range requests) before giving up.</summary>
    public int Attempts { get; set; } = 3;

    /// <summary>
    /// Directories <c>file://</c> URLs may read from. Empty (the default) refuses <c>file://</c>, so a caller cannot
    /// make the server read its own files.
    /// </summary>
    public List<string> AllowedFileRoots { get; set; } = [];

    public S3DownloadOptions S3 { get; set; } = new();
}

/// <summary>S3 or an S3-compatible store (MinIO, Ceph): endpoint, region and credentials.</summary>
public sealed class S3DownloadOptions
{
    /// <summary>Endpoint of an S3-compatible store, e.g. http://127.0.0.1:9000; empty = AWS.</summary>
    public string? ServiceUrl { get; set; }

    public string Region { get; set; } = "us-east-1";

    public bool ForcePathStyle { get; set; } = true;

    /// <summary>Access key; when empty, AWS_ACCESS_KEY_ID is used, and without either, requests are anonymous.</summary>
    public string? AccessKey { get; set; }

    public string? SecretKey { get; set; }
}

public enum DownloadErrorKind
{
    /// <summary>The URL or checksum is malformed, or its scheme or location is not allowed.</summary>
    InvalidSource,

    /// <summary>The source answered that the file does not exist (or access is denied).</summary>
    NotFound,

    /// <summary>The file's checksum differs from the one given; the file was deleted.</summary>
    ChecksumMismatch,

    /// <summary>The file is larger than <see cref="DownloadOptions.MaxBytes"/>.</summary>
    TooLarge,

    /// <summary>The source failed or could not be reached.</summary>
    Unavailable,
}

public sealed class DownloadException(DownloadErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public DownloadErrorKind Kind { get; } = kind;
}

/// <summary>A file fetched into the cache.</summary>
public sealed record DownloadedFile(string Path, long Length, string Sha256, bool FromCache);

/// <summary>Bytes received so far and the total when known.</summary>
public readonly record struct DownloadProgress(long Received, long? Total);

/// <summary>
/// Fetches <c>http(s)://</c>, <c>file://</c> (allowed roots only) and <c>s3://bucket/key</c> into a cache keyed by URL,
/// with expiry, checksum verification (<c>sha256:HEX</c> or <c>md5:HEX</c>; a mismatch deletes the file), resumable HTTP
/// range requests where the server supports them, and progress reporting. Concurrent fetches of one URL share the work.
/// </summary>
public sealed partial class DownloadManager(HttpClient http, IOptions<DownloadOptions> options, TimeProvider time, ILogger<DownloadManager> logger)
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly DownloadOptions _options = options.Value;

    private string CacheDirectory => Path.GetFullPath(_options.CacheDirectory);

    public async Task<DownloadedFile> FetchAsync(
        string url, string? checksum = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var (source, expected, key) = Prepare(url, checksum);
        var gate = _locks.GetOrAdd(key, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            var (data, meta) = CachePaths(key);
            if (TryCached(data, meta, expected) is { } cached)
            {
                LogCacheHit(logger, Redacted(source));
                return cached;
            }

            return await DownloadAsync(source, expected, key, progress, cancellationToken);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Fetches <paramref name="url"/> like <see cref="FetchAsync"/> and hands the file to <paramref name="take"/>, which
    /// moves it away (into a content-addressed store) and says what it became. The cache keeps no second copy, only the
    /// URL's record with the file's SHA-256: until the entry expires, a later call asks <paramref name="held"/> whether
    /// that content is still where <paramref name="take"/> put it, and fetches again only when it is not.
    /// </summary>
    /// <param name="held">The stored content for a SHA-256 this manager computed, or null when it is gone.</param>
    /// <param name="take">Moves the file (the SHA-256 it carries was computed by this manager while writing it).</param>
    public async Task<T> FetchAndTakeAsync<T>(
        string url, string? checksum, Func<string, T?> held, Func<DownloadedFile, CancellationToken, Task<T>> take, CancellationToken cancellationToken = default)
        where T : class
    {
        var (source, expected, key) = Prepare(url, checksum);
        var gate = _locks.GetOrAdd(key, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken);
        try
        {
            var (data, meta) = CachePaths(key);
            var record = ReadRecord(data, meta, expected, requireData: false);
            if (record is { Taken: true } && held(record.Sha256) is { } stored)
            {
                LogCacheHit(logger, Redacted(source));
                return stored;
            }

            var file = record is { Taken: false }
                ? new DownloadedFile(data, record.Length, record.Sha256, FromCache: true)
                : await DownloadAsync(source, expected, key, progress: null, cancellationToken);
            record = ReadRecord(data, meta, expected: null, requireData: true)
                ?? throw new InvalidOperationException($"The cache record of {Redacted(source)} vanished while its lock was held.");
            var result = await take(file, cancellationToken);
            await File.WriteAllTextAsync(meta, JsonSerializer.Serialize(record with { Taken = true }), CancellationToken.None);
            File.Delete(data);
            return result;
        }
        finally
        {
            gate.Release();
        }
    }

    private static (Uri Source, ExpectedChecksum? Expected, string Key) Prepare(string url, string? checksum)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var source))
        {
            throw new DownloadException(DownloadErrorKind.InvalidSource, $"'{url}' is not an absolute URL.");
        }

        var expected = ParseChecksum(checksum);
        if (source.Scheme is not ("http" or "https" or "file" or "s3"))
        {
            throw new DownloadException(DownloadErrorKind.InvalidSource, $"URL scheme '{source.Scheme}' is not supported (http, https, file, s3).");
        }

        var key = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(source.AbsoluteUri)));
        return (source, expected, key);
    }

    private (string Data, string Meta) CachePaths(string key)
    {
        Directory.CreateDirectory(CacheDirectory);
        return (Path.Combine(CacheDirectory, key + ".data"), Path.Combine(CacheDirectory, key + ".json"));
    }

    /// <summary>Fetches into the cache (the caller holds the URL's lock), hashing the bytes as they are written.</summary>
    private async Task<DownloadedFile> DownloadAsync(
        Uri source, ExpectedChecksum? expected, string key, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var (data, meta) = CachePaths(key);
        File.Delete(meta);
        var partial = Path.Combine(CacheDirectory, key + ".partial");
        FileDigest digest;
        try
        {
            digest = source.Scheme switch
            {
                "file" => await CopyFileAsync(source, partial, progress, cancellationToken),
                "s3" => await FetchS3Async(source, partial, progress, cancellationToken),
                _ => await FetchHttpAsync(source, partial, progress, cancellationToken),
            };
        }
        catch (DownloadException e) when (e.Kind is DownloadErrorKind.TooLarge or DownloadErrorKind.NotFound)
        {
            // Nothing to resume from: a partial file would only make the next attempt fail the same way.
            File.Delete(partial);
            throw;
        }

        var (sha256, md5, length) = digest;
        if (expected is { } want && !want.Matches(sha256, md5))
        {
            File.Delete(partial);
            throw new DownloadException(DownloadErrorKind.ChecksumMismatch,
                $"The file from {Redacted(source)} has {want.Algorithm} {(want.Algorithm == "sha256" ? sha256 : md5)}, not the expected {want.Hex}; it was deleted.");
        }

        File.Move(partial, data, overwrite: true);
        await File.WriteAllTextAsync(meta, JsonSerializer.Serialize(new CacheRecord(source.AbsoluteUri, time.GetUtcNow(), length, sha256, md5)), cancellationToken);
        LogFetched(logger, Redacted(source), length);
        return new DownloadedFile(data, length, sha256, FromCache: false);
    }

    private DownloadedFile? TryCached(string data, string meta, ExpectedChecksum? expected) =>
        ReadRecord(data, meta, expected, requireData: true) is { } record
            ? new DownloadedFile(data, record.Length, record.Sha256, FromCache: true)
            : null;

    /// <summary>The URL's unexpired cache record matching <paramref name="expected"/>; with its data file unless taken.</summary>
    private CacheRecord? ReadRecord(string data, string meta, ExpectedChecksum? expected, bool requireData)
    {
        if (!File.Exists(meta))
        {
            return null;
        }

        try
        {
            var record = JsonSerializer.Deserialize<CacheRecord>(File.ReadAllText(meta));
            if (record is null || record.FetchedAt + _options.CacheExpiry <= time.GetUtcNow())
            {
                return null;
            }

            var hasData = File.Exists(data) && new FileInfo(data).Length == record.Length;
            if ((requireData || !record.Taken) && !hasData)
            {
                return null;
            }

            return expected is null || expected.Value.Matches(record.Sha256, record.Md5) ? record : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private async Task<FileDigest> FetchHttpAsync(Uri source, string partial, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            using var request = new HttpRequestMessage(HttpMethod.Get, source);
            if (have > 0)
            {
                request.Headers.Range = new RangeHeaderValue(have, null);
            }

            try
            {
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Gone or HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
                {
                    File.Delete(partial);
                    throw new DownloadException(DownloadErrorKind.NotFound, $"{Redacted(source)} answered {(int)response.StatusCode} {response.ReasonPhrase}.");
                }

                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
                {
                    File.Delete(partial);
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    throw new DownloadException(DownloadErrorKind.Unavailable, $"{Redacted(source)} answered {(int)response.StatusCode} {response.ReasonPhrase}.");
                }

                var resumed = response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From == have;
                long? total = response.Content.Headers.ContentLength is { } length ? (resumed ? have + length : length) : null;
                if (total > _options.MaxBytes)
                {
                    throw new DownloadException(DownloadErrorKind.TooLarge, $"{Redacted(source)} is {total} bytes; the limit is {_options.MaxBytes}.");
                }

                if (resumed)
                {
                    LogResumed(logger, Redacted(source), have);
                }

                using var digest = new HashingCopy();
                if (resumed)
                {
                    // The bytes kept from an earlier attempt are hashed once, then the rest as it arrives.
                    await digest.AppendFileAsync(partial, cancellationToken);
                }

                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                await using (var file = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 81920, useAsync: true))
                {
                    await CopyAsync(body, file, digest, total, progress, cancellationToken);
                }

                return digest.Finish();
            }
            catch (Exception e) when (e is HttpRequestException or IOException && attempt < _options.Attempts && !cancellationToken.IsCancellationRequested)
            {
                LogRetrying(logger, Redacted(source), attempt, e.Message);
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                throw new DownloadException(DownloadErrorKind.Unavailable, $"Fetching {Redacted(source)} failed: {e.Message}", e);
            }
            catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new DownloadException(DownloadErrorKind.Unavailable, $"Fetching {Redacted(source)} timed out.", e);
            }
        }
    }

    private async Task<FileDigest> CopyFileAsync(Uri source, string partial, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var path = Path.GetFullPath(source.LocalPath);
        var allowed = _options.AllowedFileRoots.Select(r => Path.GetFullPath(r).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar);
        if (!allowed.Any(root => path.StartsWith(root, StringComparison.Ordinal)))
        {
            throw new DownloadException(DownloadErrorKind.InvalidSource,
                $"file:// URLs may only read under Carml:Downloads:AllowedFileRoots; {path} is not under any of them.");
        }

        if (!File.Exists(path))
        {
            throw new DownloadException(DownloadErrorKind.NotFound, $"{path} does not exist.");
        }

        await using var input = File.OpenRead(path);
        if (input.Length > _options.MaxBytes)
        {
            throw new DownloadException(DownloadErrorKind.TooLarge, $"{path} is {input.Length} bytes; the limit is {_options.MaxBytes}.");
        }

        using var digest = new HashingCopy();
        await using (var output = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 81920, useAsync: true))
        {
            await CopyAsync(input, output, digest, input.Length, progress, cancellationToken);
        }

        return digest.Finish();
    }

    private async Task<FileDigest> FetchS3Async(Uri source, string partial, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var bucket = source.Host;
        var key = Uri.UnescapeDataString(source.AbsolutePath.TrimStart('/'));
        if (bucket.Length == 0 || key.Length == 0)
        {
            throw new DownloadException(DownloadErrorKind.InvalidSource, $"'{source}' is not of the form s3://bucket/key.");
        }

        var s3 = _options.S3;
        var config = new AmazonS3Config
        {
            ForcePathStyle = s3.ForcePathStyle,
            AuthenticationRegion = s3.Region,
        };
        if (!string.IsNullOrEmpty(s3.ServiceUrl))
        {
            config.ServiceURL = s3.ServiceUrl;
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(s3.Region);
        }

        var accessKey = s3.AccessKey ?? Environment.GetEnvironmentVariable("AWS_ACCESS_KEY_ID");
        var secretKey = s3.SecretKey ?? Environment.GetEnvironmentVariable("AWS_SECRET_ACCESS_KEY");
        AWSCredentials credentials = string.IsNullOrEmpty(accessKey) || string.IsNullOrEmpty(secretKey)
            ? new AnonymousAWSCredentials()
            : new BasicAWSCredentials(accessKey, secretKey);
        using var client = new AmazonS3Client(credentials, config);
        try
        {
            using var response = await client.GetObjectAsync(bucket, key, cancellationToken);
            if (response.ContentLength > _options.MaxBytes)
            {
                throw new DownloadException(DownloadErrorKind.TooLarge, $"{source} is {response.ContentLength} bytes; the limit is {_options.MaxBytes}.");
            }

            using var digest = new HashingCopy();
            await using (var output = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                await CopyAsync(response.ResponseStream, output, digest, response.ContentLength, progress, cancellationToken);
            }

            return digest.Finish();
        }
        catch (AmazonS3Exception e) when (e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden)
        {
            throw new DownloadException(DownloadErrorKind.NotFound, $"{source}: {(int)e.StatusCode} {e.ErrorCode}.", e);
        }
        catch (AmazonServiceException e)
        {
            throw new DownloadException(DownloadErrorKind.Unavailable, $"{source}: {e.Message}", e);
        }
        catch (AmazonClientException e)
        {
            File.Delete(partial);
            throw new DownloadException(DownloadErrorKind.Unavailable, $"{source}: {e.Message}", e);
        }
    }

    private async Task CopyAsync(Stream input, Stream output, HashingCopy digest, long? total, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var buffer = new byte[81920];
        int read;
        while ((read = await input.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (digest.Length + read > _options.MaxBytes)
            {
                throw new DownloadException(DownloadErrorKind.TooLarge, $"The file is larger than the limit of {_options.MaxBytes} bytes.");
            }

            await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            digest.Append(buffer.AsSpan(0, read));
            progress?.Report(new DownloadProgress(digest.Length, total));
        }
    }

    private static ExpectedChecksum? ParseChecksum(string? checksum)
    {
        if (string.IsNullOrEmpty(checksum))
        {
            return null;
        }

        var parts = checksum.Split(':', 2);
        var (algorithm, length) = parts[0].ToLowerInvariant() switch
        {
            "sha256" => ("sha256", 64),
            "md5" => ("md5", 32),
            _ => throw new DownloadException(DownloadErrorKind.InvalidSource, $"Checksum '{checksum}' must be sha256:HEX or md5:HEX."),
        };
        var hex = parts.Length == 2 ? parts[1].ToLowerInvariant() : string.Empty;
        if (hex.Length != length || !hex.All(Uri.IsHexDigit))
        {
            throw new DownloadException(DownloadErrorKind.InvalidSource, $"Checksum '{checksum}' must be {algorithm}: followed by {length} hex digits.");
        }

        return new ExpectedChecksum(algorithm, hex);
    }

    /// <summary>The URL without credentials or query (which may carry tokens), for messages and logs.</summary>
    private static string Redacted(Uri source) => $"{source.Scheme}://{source.Host}{(source.IsDefaultPort ? string.Empty : ":" + source.Port)}{source.AbsolutePath}";

    private readonly record struct ExpectedChecksum(string Algorithm, string Hex)
    {
        public bool Matches(string sha256, string? md5) => Algorithm == "sha256" ? Hex == sha256 : Hex == md5;
    }

    /// <summary>A cache entry; <see cref="Taken"/> means its file was moved out by <see cref="FetchAndTakeAsync"/>.</summary>
    private sealed record CacheRecord(string Url, DateTimeOffset FetchedAt, long Length, string Sha256, string Md5, bool Taken = false);

    private readonly record struct FileDigest(string Sha256, string Md5, long Length);

    /// <summary>SHA-256 and MD5 of the bytes written to a download's file, computed as they are written.</summary>
    private sealed class HashingCopy : IDisposable
    {
        private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly IncrementalHash _md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);

        public long Length { get; private set; }

        public void Append(ReadOnlySpan<byte> bytes)
        {
            _sha256.AppendData(bytes);
            _md5.AppendData(bytes);
            Length += bytes.Length;
        }

        /// <summary>Hashes the bytes an earlier attempt left in <paramref name="path"/> (a resumed transfer).</summary>
        public async Task AppendFileAsync(string path, CancellationToken cancellationToken)
        {
            await using var file = File.OpenRead(path);
            var buffer = new byte[81920];
            int read;
            while ((read = await file.ReadAsync(buffer, cancellationToken)) > 0)
            {
                Append(buffer.AsSpan(0, read));
            }
        }

        public FileDigest Finish() =>
            new(Convert.ToHexStringLower(_sha256.GetHashAndReset()), Convert.ToHexStringLower(_md5.GetHashAndReset()), Length);

        public void Dispose()
        {
            _sha256.Dispose();
            _md5.Dispose();
        }
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Fetched {Source} ({Bytes} bytes)")]
    private static partial void LogFetched(ILogger logger, string source, long bytes);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Debug, Message = "Cache hit for {Source}")]
    private static partial void LogCacheHit(ILogger logger, string source);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Information, Message = "Resuming {Source} from byte {Offset}")]
    private static partial void LogResumed(ILogger logger, string source, long offset);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Warning, Message = "Fetching {Source} failed on attempt {Attempt}: {Reason}; resuming")]
    private static partial void LogRetrying(ILogger logger, string source, int attempt, string reason);
}

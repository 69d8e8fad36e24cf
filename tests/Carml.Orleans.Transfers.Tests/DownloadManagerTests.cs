using System.Net;
using System.Security.Cryptography;
using Carml.Orleans.Transfers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Tests;

/// <summary>A file server on loopback that counts requests, honours Range, and can cut a response short once.</summary>
public sealed class FileServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    public FileServer(byte[] content)
    {
        Content = content;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _app = builder.Build();
        _app.MapGet("/file.bin", async context =>
        {
            Interlocked.Increment(ref _requests);
            var range = context.Request.Headers.Range.ToString();
            long start = 0;
            if (range.StartsWith("bytes=", StringComparison.Ordinal))
            {
                start = long.Parse(range[6..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
                RangeRequests.Add(start);
                context.Response.StatusCode = StatusCodes.Status206PartialContent;
                context.Response.Headers.ContentRange = $"bytes {start}-{Content.Length - 1}/{Content.Length}";
            }

            context.Response.Headers.AcceptRanges = "bytes";
            context.Response.ContentLength = Content.Length - start;
            if (Interlocked.Exchange(ref _cutNext, 0) == 1)
            {
                // Send half, then drop the connection.
                await context.Response.Body.WriteAsync(Content.AsMemory((int)start, (Content.Length - (int)start) / 2));
                await context.Response.Body.FlushAsync();
                context.Abort();
                return;
            }

            await context.Response.Body.WriteAsync(Content.AsMemory((int)start));
        });
        _app.MapGet("/missing.bin", () => Results.NotFound());
        _app.StartAsync().GetAwaiter().GetResult();
        Address = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    private int _requests;
    private int _cutNext;

    public byte[] Content { get; }

    public Uri Address { get; }

    public int Requests => _requests;

    public List<long> RangeRequests { get; } = [];

    public void CutNextResponse() => _cutNext = 1;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

public sealed class DownloadManagerTests : IAsyncDisposable
{
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "carml-downloads-" + Guid.NewGuid().ToString("N"));
    private readonly FileServer _server = new(RandomNumberGenerator.GetBytes(300_000));
    private readonly HttpClient _http = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        if (Directory.Exists(_cache))
        {
            Directory.Delete(_cache, recursive: true);
        }
    }

    private DownloadManager Manager(Action<DownloadOptions>? configure = null, TimeProvider? time = null)
    {
        var options = new DownloadOptions { CacheDirectory = _cache };
        configure?.Invoke(options);
        return new DownloadManager(_http, Options.Create(options), time ?? TimeProvider.System, NullLogger<DownloadManager>.Instance);
    }

    private string Url(string path) => new Uri(_server.Address, path).ToString();

    private string Sha256 => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(_server.Content));

    [Fact]
    public async Task Http_download_is_verified_cached_and_reused()
    {
        var manager = Manager();
        var progress = new List<DownloadProgress>();

        var first = await manager.FetchAsync(Url("/file.bin"), Sha256, new SynchronousProgress(progress.Add), Ct);
        var second = await manager.FetchAsync(Url("/file.bin"), Sha256, cancellationToken: Ct);

        Assert.False(first.FromCache);
        Assert.True(second.FromCache);
        Assert.Equal(1, _server.Requests);
        Assert.Equal(_server.Content, await File.ReadAllBytesAsync(second.Path, Ct));
        Assert.Equal(300_000, progress[^1].Received);
        Assert.Equal(300_000, progress[^1].Total);
    }

    [Fact]
    public async Task Expired_cache_entries_are_fetched_again()
    {
        var clock = new ShiftingClock();
        var manager = Manager(o => o.CacheExpiry = TimeSpan.FromHours(1), clock);
        await manager.FetchAsync(Url("/file.bin"), cancellationToken: Ct);

        clock.Shift = TimeSpan.FromHours(2);
        var again = await manager.FetchAsync(Url("/file.bin"), cancellationToken: Ct);

        Assert.False(again.FromCache);
        Assert.Equal(2, _server.Requests);
    }

    [Fact]
    public async Task Interrupted_transfer_resumes_with_a_range_request()
    {
        _server.CutNextResponse();

        var file = await Manager().FetchAsync(Url("/file.bin"), Sha256, cancellationToken: Ct);

        Assert.Equal(_server.Content, await File.ReadAllBytesAsync(file.Path, Ct));
        var resumedAt = Assert.Single(_server.RangeRequests);
        Assert.InRange(resumedAt, 1, 299_999);
    }

    [Fact]
    public async Task Download_taken_by_a_store_moves_out_of_the_cache_and_is_reused_while_the_store_holds_it()
    {
        var manager = Manager();
        var store = Path.Combine(_cache, "store");
        Directory.CreateDirectory(store);
        var handed = new List<DownloadedFile>();
        string? Held(string sha) => File.Exists(Path.Combine(store, sha)) ? Path.Combine(store, sha) : null;
        Task<string> Take(DownloadedFile file, CancellationToken ct)
        {
            handed.Add(file);
            var target = Path.Combine(store, file.Sha256);
            File.Move(file.Path, target);
            return Task.FromResult(target);
        }

        var first = await manager.FetchAndTakeAsync(Url("/file.bin"), Sha256, Held, Take, Ct);
        var second = await manager.FetchAndTakeAsync(Url("/file.bin"), Sha256, Held, Take, Ct);
        File.Delete(first);
        var third = await manager.FetchAndTakeAsync(Url("/file.bin"), Sha256, Held, Take, Ct);

        Assert.Equal("sha256:" + Assert.Single(handed.DistinctBy(h => h.Sha256)).Sha256, Sha256);
        Assert.Equal(first, second);
        Assert.Equal(2, handed.Count); // the second call found the content still held; the third had to fetch again
        Assert.Equal(2, _server.Requests);
        Assert.Equal(_server.Content, await File.ReadAllBytesAsync(third, Ct));
        Assert.Empty(Directory.GetFiles(_cache, "*.data"));
    }

    [Fact]
    public async Task Interrupted_transfer_that_is_taken_carries_the_sha256_of_the_whole_file()
    {
        _server.CutNextResponse();
        DownloadedFile? handed = null;

        await Manager().FetchAndTakeAsync<string>(
            Url("/file.bin"), checksum: null, _ => null, (file, _) => Task.FromResult((handed = file).Path), Ct);

        Assert.Single(_server.RangeRequests);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(_server.Content)), handed!.Sha256);
        Assert.Equal(300_000, handed.Length);
    }

    [Fact]
    public async Task Checksum_mismatch_deletes_the_file_and_fails_clearly()
    {
        var wrong = "md5:" + new string('0', 32);

        var error = await Assert.ThrowsAsync<DownloadException>(() => Manager().FetchAsync(Url("/file.bin"), wrong, cancellationToken: Ct));

        Assert.Equal(DownloadErrorKind.ChecksumMismatch, error.Kind);
        Assert.Contains("not the expected 00000000000000000000000000000000", error.Message);
        Assert.Empty(Directory.GetFiles(_cache, "*.data"));
        Assert.Empty(Directory.GetFiles(_cache, "*.partial"));
    }

    [Fact]
    public async Task Missing_file_is_not_found()
    {
        var error = await Assert.ThrowsAsync<DownloadException>(() => Manager().FetchAsync(Url("/missing.bin"), cancellationToken: Ct));

        Assert.Equal(DownloadErrorKind.NotFound, error.Kind);
        Assert.Contains("answered 404", error.Message);
    }

    [Theory]
    [InlineData("ftp://example.test/x", "scheme 'ftp' is not supported")]
    [InlineData("not a url", "is not an absolute URL")]
    [InlineData("s3://bucket-only", "is not of the form s3://bucket/key")]
    public async Task Unsupported_sources_are_refused(string url, string expected)
    {
        var error = await Assert.ThrowsAsync<DownloadException>(() => Manager().FetchAsync(url, cancellationToken: Ct));

        Assert.Equal(DownloadErrorKind.InvalidSource, error.Kind);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("sha1:abc")]
    [InlineData("sha256:xyz")]
    public async Task Malformed_checksums_are_refused(string checksum)
    {
        var error = await Assert.ThrowsAsync<DownloadException>(() => Manager().FetchAsync(Url("/file.bin"), checksum, cancellationToken: Ct));

        Assert.Equal(DownloadErrorKind.InvalidSource, error.Kind);
    }

    [Fact]
    public async Task Files_over_the_limit_are_refused()
    {
        var error = await Assert.ThrowsAsync<DownloadException>(() => Manager(o => o.MaxBytes = 1000).FetchAsync(Url("/file.bin"), cancellationToken: Ct));

        Assert.Equal(DownloadErrorKind.TooLarge, error.Kind);
    }

    [Fact]
    public async Task File_urls_read_only_under_allowed_roots()
    {
        var root = Path.Combine(Path.GetTempPath(), "carml-files-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            var inside = Path.Combine(root, "model.onnx");
            await File.WriteAllBytesAsync(inside, [1, 2, 3], Ct);

            var allowed = await Manager(o => o.AllowedFileRoots = [root]).FetchAsync(new Uri(inside).ToString(), cancellationToken: Ct);
            var refused = await Assert.ThrowsAsync<DownloadException>(() => Manager().FetchAsync("file:///etc/hostname", cancellationToken: Ct));

            Assert.Equal([1, 2, 3], await File.ReadAllBytesAsync(allowed.Path, Ct));
            Assert.Equal(DownloadErrorKind.InvalidSource, refused.Kind);
            Assert.Contains("AllowedFileRoots", refused.Message);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private sealed class SynchronousProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }

    private sealed class ShiftingClock : TimeProvider
    {
        public TimeSpan Shift { get; set; }

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Shift;
    }
}

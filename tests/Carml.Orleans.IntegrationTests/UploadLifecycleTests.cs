using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Carml.Orleans.Core;
using Carml.Orleans.Gateway.Uploads;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Carml.Orleans.Tests;

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualClock : TimeProvider
{
    private DateTimeOffset _now = DateTimeOffset.UtcNow;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>Uploads across gateway restarts, interruptions and expiry, and models registered from uploads.</summary>
public sealed class UploadLifecycleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly Dictionary<string, string?> NoSample = new() { ["Carml:SampleModel:Enabled"] = "false" };

    [Fact]
    public async Task Model_from_an_upload_resumed_after_a_gateway_restart_serves_predictions()
    {
        using var data = new TempDirectory();
        var model = TestModels.Iris.OnnxBytes;
        var half = model.Length / 2;
        string location;
        await using (var first = await GatewayInstance.StartAsync(data.Path, NoSample))
        {
            location = await TusUploadTests.CreateAsync(first.Http, model.Length, "filename aXJpcy5vbm54,kind bW9kZWw=");
            using var patch = await TusUploadTests.PatchAsync(first.Http, location, 0, model[..half]);
            Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
        }

        await using var second = await GatewayInstance.StartAsync(data.Path, NoSample);
        var offset = await TusUploadTests.OffsetAsync(second.Http, location);
        using (var rest = await TusUploadTests.PatchAsync(second.Http, location, offset, model[(int)offset..]))
        {
            Assert.Equal(HttpStatusCode.NoContent, rest.StatusCode);
        }

        var uploadId = location.Split('/')[^1];
        var manifest = TestModels.IrisManifest("uploaded", "1").Replace("  path: iris.onnx", $"  upload: {uploadId}", StringComparison.Ordinal);
        var registered = await second.Http.PostAsync("/api/models", new StringContent(manifest, Encoding.UTF8, "application/yaml"), Ct);
        Assert.Equal(HttpStatusCode.Created, registered.StatusCode);

        var rows = TestModels.IrisRows.Skip(120).Take(4).ToArray();
        var body = await (await second.Http.PostJsonAsync("/v2/models/uploaded/infer", KServeHttpTests.IrisRequest(rows))).JsonAsync();
        var labels = body.GetProperty("outputs")[1].GetProperty("data").EnumerateArray().Select(e => e.GetInt64());
        Assert.Equal(half, offset);
        Assert.Equal(rows.Select(r => (long)TestModels.Iris.Model.PredictLabel(r.Features)), labels);
    }

    [Fact]
    public async Task Interrupted_patch_keeps_what_arrived_and_the_upload_resumes_from_there()
    {
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(data.Path, NoSample);
        var bytes = new byte[512 * 1024];
        Random.Shared.NextBytes(bytes);
        var location = await TusUploadTests.CreateAsync(gateway.Http, bytes.Length);
        var file = gateway.Services.GetRequiredService<UploadFileStore>().PathOf(location.Split('/')[^1]);
        const int first = 100_000;
        const int broken = first + 240 * 1024; // the interrupted PATCH carries 240 KiB before the connection drops
        using (var patch = await TusUploadTests.PatchAsync(gateway.Http, location, 0, bytes[..first]))
        {
            Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
        }

        Assert.Equal(first, await TusUploadTests.OffsetAsync(gateway.Http, location));

        // The second PATCH sends its bytes, then holds the body open until the server has written some of them to the
        // upload's file, and only then drops the connection: what reached the server is known to be there.
        var body = new BreakableStream(bytes, start: first, breakAt: broken);
        long written;
        using (var request = TusUploadTests.Tus(HttpMethod.Patch, location))
        {
            request.Headers.Add("Upload-Offset", first.ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Content = new StreamContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/offset+octet-stream");
            request.Content.Headers.ContentLength = bytes.Length - first;
            var sending = gateway.Http.SendAsync(request, Ct);
            try
            {
                written = await WaitForFileLongerThanAsync(file, first);
            }
            finally
            {
                body.Break();
            }

            await Assert.ThrowsAnyAsync<Exception>(() => sending);
        }

        // The server finishes the broken request on its own time: wait, bounded, until the upload accepts an append.
        var offset = await WaitForIdleOffsetAsync(gateway.Http, location);
        using var rest = await TusUploadTests.PatchAsync(gateway.Http, location, offset, bytes[(int)offset..]);

        Assert.InRange(offset, written, broken); // every byte seen on disk before the drop was kept, and nothing invented
        Assert.True(offset > first, $"The interrupted PATCH's bytes were dropped: the offset is back at {offset}.");
        Assert.Equal(HttpStatusCode.NoContent, rest.StatusCode);
        var info = await (await gateway.Http.GetAsync(location, Ct)).JsonAsync();
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), info.GetProperty("sha256").GetString());
    }

    [Fact]
    public async Task Expired_upload_is_410_and_purged()
    {
        using var data = new TempDirectory();
        var clock = new ManualClock();
        await using var gateway = await GatewayInstance.StartAsync(data.Path, NoSample,
            services => services.AddKeyedSingleton<TimeProvider>(UploadOptions.ClockKey, clock));
        var location = await TusUploadTests.CreateAsync(gateway.Http, 10);
        using (await TusUploadTests.PatchAsync(gateway.Http, location, 0, [1, 2, 3]))
        {
        }

        clock.Advance(TimeSpan.FromDays(2));
        var purge = gateway.Services.GetServices<IHostedService>().OfType<UploadPurgeService>().Single();
        var purged = await purge.PurgeDueAsync(Ct);

        using var head = await gateway.Http.SendAsync(TusUploadTests.Tus(HttpMethod.Head, location), Ct);
        using var patch = await TusUploadTests.PatchAsync(gateway.Http, location, 3, [4]);
        Assert.Equal(1, purged);
        Assert.Equal(HttpStatusCode.Gone, head.StatusCode);
        Assert.Equal(HttpStatusCode.Gone, patch.StatusCode);
        var files = gateway.Services.GetRequiredService<UploadFileStore>();
        Assert.False(File.Exists(files.PathOf(location.Split('/')[^1])));
    }

    [Theory]
    [InlineData("0123456789abcdef0123456789abcdef", "is not an upload this server knows")]
    [InlineData("unfinished", "finish the upload first")]
    public async Task Registering_from_an_unknown_or_unfinished_upload_is_400(string upload, string expected)
    {
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(data.Path, NoSample);
        if (upload == "unfinished")
        {
            upload = (await TusUploadTests.CreateAsync(gateway.Http, 100)).Split('/')[^1];
        }

        var manifest = TestModels.IrisManifest("from-upload", "1").Replace("  path: iris.onnx", $"  upload: {upload}", StringComparison.Ordinal);
        var response = await gateway.Http.PostAsync("/api/models", new StringContent(manifest, Encoding.UTF8, "application/yaml"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    /// <summary>
    /// A gateway that dies after the upload grain recorded the SHA-256 but before the file moved into the content store
    /// leaves a completed upload whose bytes are still its upload file: registering from it imports them then, and
    /// refuses (400, nothing registered) when the file is gone or no longer has the recorded SHA-256.
    /// </summary>
    [Theory]
    [InlineData("intact", null)]
    [InlineData("changed", "but its file now has")]
    [InlineData("lost", "finished but its bytes are no longer stored")]
    public async Task A_completed_upload_whose_file_was_never_imported_is_imported_when_used(string file, string? expected)
    {
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(data.Path, NoSample);
        var model = TestModels.Iris.OnnxBytes;
        var location = await TusUploadTests.CreateAsync(gateway.Http, model.Length, "filename aXJpcy5vbm54");
        using (var patch = await TusUploadTests.PatchAsync(gateway.Http, location, 0, model))
        {
            Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
        }

        // Put the finished bytes back where they were before the import, as a crash in between leaves them.
        var uploadId = location.Split('/')[^1];
        var store = gateway.Services.GetRequiredService<ContentStore>();
        var sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(model));
        var part = gateway.Services.GetRequiredService<UploadFileStore>().PathOf(uploadId);
        File.Move(store.GetPath(sha256), part);
        if (file == "changed")
        {
            await File.WriteAllBytesAsync(part, [.. model[..^1], (byte)(model[^1] ^ 0xFF)], Ct);
        }
        else if (file == "lost")
        {
            File.Delete(part);
        }

        var manifest = TestModels.IrisManifest("half-finished", "1").Replace("  path: iris.onnx", $"  upload: {uploadId}", StringComparison.Ordinal);
        var response = await gateway.Http.PostAsync("/api/models", new StringContent(manifest, Encoding.UTF8, "application/yaml"), Ct);

        if (expected is null)
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            Assert.True(store.Exists(sha256), "the upload's file should now be in the content store under its recorded SHA-256");
            Assert.False(File.Exists(part), "the import moves the upload file, it does not copy it");
            Assert.Equal(HttpStatusCode.OK, (await gateway.Http.PostJsonAsync("/v2/models/half-finished/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)))).StatusCode);
        }
        else
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
            Assert.False(store.Exists(sha256));
            Assert.Equal(HttpStatusCode.NotFound, (await gateway.Http.GetAsync("/v2/models/half-finished", Ct)).StatusCode);
        }
    }

    private static async Task<long> WaitForIdleOffsetAsync(HttpClient http, string location)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var offset = await TusUploadTests.OffsetAsync(http, location);
            using var probe = await TusUploadTests.PatchAsync(http, location, offset, []);
            if (probe.StatusCode == HttpStatusCode.NoContent)
            {
                return offset;
            }

            Assert.True(DateTime.UtcNow < deadline, $"The interrupted request still holds upload {location} after 30 s (last answer {(int)probe.StatusCode}).");
            await Task.Yield();
        }
    }

    /// <summary>Polls, bounded, until the upload's file on disk is longer than <paramref name="length"/>; answers its length.</summary>
    private static async Task<long> WaitForFileLongerThanAsync(string path, long length)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var info = new FileInfo(path);
            if (info.Exists && info.Length > length)
            {
                return info.Length;
            }

            Assert.True(DateTime.UtcNow < deadline, $"The upload's file {path} still holds {(info.Exists ? info.Length : 0)} bytes after 30 s; the server never wrote the PATCH's bytes.");
            await Task.Delay(10, Ct);
        }
    }

    /// <summary>
    /// A request body that yields <c>data[start..breakAt]</c>, then waits for <see cref="Break"/> and fails, like a
    /// connection dropped at a moment the test chooses.
    /// </summary>
    private sealed class BreakableStream(byte[] data, int start, int breakAt) : Stream
    {
        private readonly TaskCompletionSource _break = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly int _start = start;
        private int _position = start;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length - _start;
        public override long Position { get => _position - _start; set => throw new NotSupportedException(); }

        public void Break() => _break.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position >= breakAt)
            {
                await _break.Task.WaitAsync(cancellationToken);
                throw new IOException("connection dropped (simulated)");
            }

            var n = Math.Min(buffer.Length, breakAt - _position);
            data.AsMemory(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("The body is read asynchronously.");

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

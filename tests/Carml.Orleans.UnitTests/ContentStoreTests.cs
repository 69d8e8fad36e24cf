using System.Security.Cryptography;
using Carml.Orleans.Core;

namespace Carml.Orleans.Tests;

public sealed class ContentStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "carml-store-" + Guid.NewGuid().ToString("N"));

    private readonly string _sources = Path.Combine(Path.GetTempPath(), "carml-sources-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        if (Directory.Exists(_sources))
        {
            Directory.Delete(_sources, recursive: true);
        }
    }

    /// <summary>A file outside the store's directory (as finished uploads and downloads are).</summary>
    private string Source(byte[] bytes)
    {
        Directory.CreateDirectory(_sources);
        var path = Path.Combine(_sources, Guid.NewGuid().ToString("N") + ".bin");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Opening_a_store_deletes_staging_files_a_dead_process_left_and_keeps_recent_ones()
    {
        var staging = Path.Combine(_root, "staging");
        Directory.CreateDirectory(staging);
        var stale = Path.Combine(staging, "left-by-a-crash");
        var live = Path.Combine(staging, "being-written");
        File.WriteAllBytes(stale, [1, 2, 3]);
        File.WriteAllBytes(live, [4, 5, 6]);
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow - ContentStore.StaleStagingAge - TimeSpan.FromHours(1));

        _ = new ContentStore(_root);

        Assert.False(File.Exists(stale), "a staging file older than a day should be swept when the store opens");
        Assert.True(File.Exists(live), "a recent staging file may belong to a write in progress and must stay");
    }

    [Fact]
    public async Task Stored_file_is_named_by_its_sha256_and_stored_once()
    {
        var store = new ContentStore(_root);
        var bytes = RandomNumberGenerator.GetBytes(200_000);

        var first = await store.PutAsync(bytes, TestContext.Current.CancellationToken);
        var second = await store.PutAsync(bytes, TestContext.Current.CancellationToken);

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), first.Sha256);
        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(store.GetPath(first.Sha256), TestContext.Current.CancellationToken));
        Assert.Equal(200_000, store.SizeOf(first.Sha256));
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "staging")));
    }

    [Fact]
    public async Task Content_over_the_limit_is_refused_and_leaves_nothing()
    {
        var store = new ContentStore(_root);

        await Assert.ThrowsAsync<ContentTooLargeException>(() =>
            store.PutAsync(new MemoryStream(new byte[10_000]), maxBytes: 1000, TestContext.Current.CancellationToken));

        Assert.Empty(Directory.GetFiles(_root, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Import_renames_the_file_into_place_without_copying_it()
    {
        var store = new ContentStore(_root);
        var bytes = RandomNumberGenerator.GetBytes(100_000);
        var source = Source(bytes);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));

        // A handle opened before the import still reaches the blob afterwards only if the file was renamed, not copied.
        await using var handle = new FileStream(source, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        var stored = await store.ImportAsync(source, sha, TestContext.Current.CancellationToken);
        handle.WriteByte((byte)(bytes[0] ^ 0xff));
        await handle.FlushAsync(TestContext.Current.CancellationToken);

        Assert.Equal(new StoredContent(sha, 100_000, Created: true), stored);
        Assert.False(File.Exists(source));
        Assert.Equal((byte)(bytes[0] ^ 0xff), (await File.ReadAllBytesAsync(store.GetPath(sha), TestContext.Current.CancellationToken))[0]);
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "staging")));
    }

    [Fact]
    public async Task Import_without_a_hash_hashes_the_file_once_and_stores_it_under_its_sha256()
    {
        var store = new ContentStore(_root);
        var bytes = RandomNumberGenerator.GetBytes(70_000);
        var source = Source(bytes);

        var stored = await store.ImportAsync(source, computedSha256: null, TestContext.Current.CancellationToken);

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), stored.Sha256);
        Assert.True(stored.Created);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(store.GetPath(stored.Sha256), TestContext.Current.CancellationToken));
        Assert.False(File.Exists(source));
    }

    [Fact]
    public async Task Importing_content_already_stored_keeps_the_stored_blob_and_deletes_the_duplicate()
    {
        var store = new ContentStore(_root);
        var bytes = RandomNumberGenerator.GetBytes(50_000);
        var existing = await store.PutAsync(bytes, TestContext.Current.CancellationToken);
        var blob = store.GetPath(existing.Sha256);
        var writtenAt = File.GetLastWriteTimeUtc(blob);
        var source = Source(bytes);

        var again = await store.ImportAsync(source, existing.Sha256, TestContext.Current.CancellationToken);

        Assert.Equal(new StoredContent(existing.Sha256, 50_000, Created: false), again);
        Assert.False(File.Exists(source));
        Assert.Equal(writtenAt, File.GetLastWriteTimeUtc(blob));
        Assert.Equal(bytes, await File.ReadAllBytesAsync(blob, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Concurrent_imports_of_the_same_content_store_one_blob_and_consume_every_source()
    {
        var store = new ContentStore(_root);
        var bytes = RandomNumberGenerator.GetBytes(300_000);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var sources = Enumerable.Range(0, 8).Select(_ => Source(bytes)).ToList();
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var imports = sources.Select(source => Task.Run(
            async () =>
            {
                await start.Task;
                return await store.ImportAsync(source, sha, TestContext.Current.CancellationToken);
            },
            TestContext.Current.CancellationToken)).ToList();
        start.SetResult();
        var results = await Task.WhenAll(imports);

        Assert.All(results, r => Assert.Equal(sha, r.Sha256));
        Assert.Single(results, r => r.Created);
        Assert.All(sources, s => Assert.False(File.Exists(s)));
        Assert.Equal(bytes, await File.ReadAllBytesAsync(store.GetPath(sha), TestContext.Current.CancellationToken));
        Assert.Single(Directory.GetFiles(Path.Combine(_root, "sha256"), "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "staging")));
    }

    [Fact]
    public async Task Import_from_another_file_system_falls_back_to_a_copy()
    {
        // /dev/shm is a tmpfs on Linux, a different device from the temp directory's disk.
        var other = Path.Combine("/dev/shm", "carml-import-" + Guid.NewGuid().ToString("N"));
        if (!OperatingSystem.IsLinux() || !Directory.Exists("/dev/shm"))
        {
            Assert.Skip("needs /dev/shm as a second file system");
        }

        Directory.CreateDirectory(other);
        try
        {
            var store = new ContentStore(_root);
            var bytes = RandomNumberGenerator.GetBytes(120_000);
            var source = Path.Combine(other, "model.onnx");
            await File.WriteAllBytesAsync(source, bytes, TestContext.Current.CancellationToken);

            var stored = await store.ImportAsync(source, computedSha256: null, TestContext.Current.CancellationToken);

            Assert.True(stored.Created);
            Assert.False(File.Exists(source));
            Assert.Equal(bytes, await File.ReadAllBytesAsync(store.GetPath(stored.Sha256), TestContext.Current.CancellationToken));
            Assert.Empty(Directory.GetFiles(Path.Combine(_root, "staging")));
        }
        finally
        {
            Directory.Delete(other, recursive: true);
        }
    }

    [Fact]
    public async Task Import_of_a_missing_file_or_with_a_malformed_hash_fails_and_stores_nothing()
    {
        var store = new ContentStore(_root);
        var source = Source([1, 2, 3]);

        await Assert.ThrowsAsync<FileNotFoundException>(() =>
            store.ImportAsync(Path.Combine(_root, "missing.bin"), new string('a', 64), TestContext.Current.CancellationToken));
        await Assert.ThrowsAsync<ArgumentException>(() =>
            store.ImportAsync(source, "ABC", TestContext.Current.CancellationToken));

        Assert.True(File.Exists(source));
        Assert.False(Directory.Exists(Path.Combine(_root, "sha256")) && Directory.EnumerateFiles(Path.Combine(_root, "sha256"), "*", SearchOption.AllDirectories).Any());
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "staging")));
    }

    [Fact]
    public void Unknown_or_malformed_hash_is_not_found()
    {
        var store = new ContentStore(_root);

        Assert.False(store.Exists("../../etc/passwd"));
        Assert.False(store.Exists(new string('a', 64)));
        Assert.Throws<FileNotFoundException>(() => store.GetPath(new string('a', 64)));
        Assert.False(store.Delete(new string('b', 64)));
    }
}

using System.Security.Cryptography;
using Carml.Orleans.Core;

namespace Carml.Orleans.Tests;

public sealed class ContentStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "carml-store-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_root, recursive: true);

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
    public void Unknown_or_malformed_hash_is_not_found()
    {
        var store = new ContentStore(_root);

        Assert.False(store.Exists("../../etc/passwd"));
        Assert.False(store.Exists(new string('a', 64)));
        Assert.Throws<FileNotFoundException>(() => store.GetPath(new string('a', 64)));
        Assert.False(store.Delete(new string('b', 64)));
    }
}

using System.Security.Cryptography;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Tests;

public sealed class UploadFileStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "carml-uploads-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private UploadFileStore Files() => new(Options.Create(new UploadOptions { Root = _root }));

    [Fact]
    public void Running_digest_continues_only_from_the_offset_it_covers()
    {
        var files = Files();
        var id = UploadFileStore.NewId();
        var bytes = RandomNumberGenerator.GetBytes(1000);

        var digest = Assert.IsType<UploadDigest>(files.TakeDigest(id, 0));
        digest.Append(bytes.AsSpan(0, 400));
        files.KeepDigest(id, digest);

        Assert.Null(files.TakeDigest(id, 300)); // another process appended meanwhile: this one's digest is stale
        Assert.Null(files.TakeDigest(id, 400)); // and it was dropped, not kept for later

        var fresh = Assert.IsType<UploadDigest>(files.TakeDigest(id, 0));
        fresh.Append(bytes.AsSpan(0, 400));
        files.KeepDigest(id, fresh);
        var resumed = Assert.IsType<UploadDigest>(files.TakeDigest(id, 400));
        resumed.Append(bytes.AsSpan(400));

        Assert.Equal(1000, resumed.Offset);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), resumed.Finish());
        resumed.Dispose();
    }

    [Fact]
    public void Deleting_an_upload_drops_its_digest()
    {
        var files = Files();
        var id = UploadFileStore.NewId();
        var digest = files.TakeDigest(id, 0)!;
        digest.Append(new byte[10]);
        files.KeepDigest(id, digest);

        files.Delete(id);

        Assert.Null(files.TakeDigest(id, 10));
    }

    [Fact]
    public void A_second_writer_is_refused_as_busy_while_the_first_still_holds_the_file()
    {
        var files = Files();
        var id = UploadFileStore.NewId();

        using (var first = files.OpenForAppend(id, 0))
        {
            var refused = Assert.Throws<UploadException>(() => files.OpenForAppend(id, 0));
            Assert.Equal(UploadErrorKind.Busy, refused.Kind);
        }

        using var after = files.OpenForAppend(id, 0);
        Assert.Equal(0, after.Position);
    }
}

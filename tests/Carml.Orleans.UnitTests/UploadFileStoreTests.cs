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
    public void A_full_table_of_digests_makes_room_by_dropping_the_one_kept_longest()
    {
        var files = Files();
        var ids = Enumerable.Range(0, UploadFileStore.MaxDigests).Select(_ => UploadFileStore.NewId()).ToList();
        foreach (var id in ids)
        {
            var digest = files.TakeDigest(id, 0)!;
            digest.Append([1]);
            files.KeepDigest(id, digest);
        }

        var newcomer = files.TakeDigest(UploadFileStore.NewId(), 0);

        Assert.NotNull(newcomer); // abandoned uploads never switch the running digest off for new ones
        Assert.Null(files.TakeDigest(ids[0], 1)); // the oldest made room
        var kept = Assert.IsType<UploadDigest>(files.TakeDigest(ids[^1], 1));
        kept.Dispose();
        newcomer.Dispose();
    }

    [Fact]
    public void Forgetting_a_terminated_upload_drops_its_digest()
    {
        var files = Files();
        var id = UploadFileStore.NewId();
        var digest = files.TakeDigest(id, 0)!;
        digest.Append([1, 2, 3]);
        files.KeepDigest(id, digest);

        files.ForgetDigest(id);

        Assert.Null(files.TakeDigest(id, 3));
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

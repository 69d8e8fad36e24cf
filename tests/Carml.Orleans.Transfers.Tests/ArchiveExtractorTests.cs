using Carml.Orleans.Transfers;
using static Carml.Orleans.Tests.ArchiveBuilder;

namespace Carml.Orleans.Tests;

public sealed class ArchiveExtractorTests : IDisposable
{
    private readonly string _work = Path.Combine(Path.GetTempPath(), "carml-archive-" + Guid.NewGuid().ToString("N"));

    public ArchiveExtractorTests() => Directory.CreateDirectory(_work);

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private string Target => Path.Combine(_work, "out");

    private string Write(byte[] archive, string name = "archive.bin")
    {
        var path = Path.Combine(_work, name);
        System.IO.File.WriteAllBytes(path, archive);
        return path;
    }

    private static readonly Entry[] Sample = [File("model/model.onnx", "weights"), File("model/labels.txt", "a\nb"), File("README", "hi")];

    public static TheoryData<string, ArchiveKind> Formats => new()
    {
        { "zip", ArchiveKind.Zip },
        { "tar", ArchiveKind.Tar },
        { "tar.gz", ArchiveKind.TarGzip },
        { "tar.bz2", ArchiveKind.TarBzip2 },
    };

    private static byte[] Build(string format, params Entry[] entries) => format switch
    {
        "zip" => Zip(entries),
        "tar" => Tar(entries),
        "tar.gz" => Gzip(Tar(entries)),
        "tar.bz2" => Bzip2(Tar(entries)),
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public void Every_archive_format_is_detected_and_extracted(string format, ArchiveKind kind)
    {
        var path = Write(Build(format, Sample));

        var result = ArchiveExtractor.Extract(path, Target, new ArchiveLimits());

        Assert.Equal(kind, result.Kind);
        Assert.Equal(["model/model.onnx", "model/labels.txt", "README"], result.Files);
        Assert.Equal("weights", System.IO.File.ReadAllText(Path.Combine(Target, "model", "model.onnx")));
        Assert.Equal(7 + 3 + 2, result.TotalBytes);
    }

    [Theory]
    [InlineData("gz")]
    [InlineData("bz2")]
    public void Single_compressed_file_is_named_after_its_archive(string format)
    {
        var data = System.Text.Encoding.UTF8.GetBytes("one file");
        var path = Write(format == "gz" ? Gzip(data) : Bzip2(data));

        var result = ArchiveExtractor.Extract(path, Target, new ArchiveLimits(), nameHint: $"weights.onnx.{format}");

        Assert.Equal(format == "gz" ? ArchiveKind.Gzip : ArchiveKind.Bzip2, result.Kind);
        Assert.Equal(["weights.onnx"], result.Files);
        Assert.Equal("one file", System.IO.File.ReadAllText(Path.Combine(Target, "weights.onnx")));
    }

    public static TheoryData<string, string, string> Malicious => new()
    {
        { "zip", "../escape.txt", "points outside the extraction directory" },
        { "tar", "../../escape.txt", "points outside the extraction directory" },
        { "tar.gz", "a/../../escape.txt", "points outside the extraction directory" },
        { "tar", "/etc/escape.txt", "has an absolute path" },
        { "zip", "/abs.txt", "has an absolute path" },
    };

    [Theory]
    [MemberData(nameof(Malicious))]
    public void Entries_escaping_the_target_are_refused_and_nothing_is_written(string format, string name, string expected)
    {
        var path = Write(Build(format, File("fine.txt", "ok"), File(name, "evil")));

        var error = Assert.Throws<ArchiveException>(() => ArchiveExtractor.Extract(path, Target, new ArchiveLimits()));

        Assert.Contains(expected, error.Message);
        Assert.False(Directory.Exists(Target));
        Assert.False(System.IO.File.Exists(Path.Combine(_work, "escape.txt")));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(_work)!, "escape.txt"));
    }

    [Theory]
    [InlineData("../../outside", "points outside the extraction directory")]
    [InlineData("/etc/passwd", "points to the absolute path")]
    public void Links_out_of_the_target_are_refused(string target, string expected)
    {
        var path = Write(Tar(File("a.txt", "a"), Symlink("link", target)));

        var error = Assert.Throws<ArchiveException>(() => ArchiveExtractor.Extract(path, Target, new ArchiveLimits()));

        Assert.Contains(expected, error.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public void Links_inside_the_target_are_kept()
    {
        var path = Write(Tar(File("dir/a.txt", "a"), Symlink("dir/b.txt", "a.txt")));

        ArchiveExtractor.Extract(path, Target, new ArchiveLimits());

        Assert.Equal("a", System.IO.File.ReadAllText(Path.Combine(Target, "dir", "b.txt")));
    }

    [Fact]
    public void A_bomb_over_the_size_limit_is_stopped_while_writing()
    {
        // 50 MB of zeros compresses to about 50 KB: the limit is checked on bytes written, not on headers.
        var path = Write(Gzip(Tar(new Entry("zeros.bin", new byte[50_000_000]))));
        Assert.True(new FileInfo(path).Length < 1_000_000);

        var error = Assert.Throws<ArchiveException>(() => ArchiveExtractor.Extract(path, Target, new ArchiveLimits { MaxTotalBytes = 1_000_000 }));

        Assert.Contains("expand to at most 1000000", error.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public void Too_many_files_are_refused()
    {
        var entries = Enumerable.Range(0, 20).Select(i => File($"f{i}.txt", "x")).ToArray();
        var path = Write(Zip(entries));

        var error = Assert.Throws<ArchiveException>(() => ArchiveExtractor.Extract(path, Target, new ArchiveLimits { MaxFiles = 10 }));

        Assert.Contains("more than 10 files", error.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Theory]
    [InlineData("same.txt", "same.txt", "appears more than once")]
    [InlineData("a", "a/b.txt", "which the archive holds as a file")]
    public void Conflicting_entries_are_refused(string first, string second, string expected)
    {
        var path = Write(Tar(File(first, "1"), File(second, "2")));

        var error = Assert.Throws<ArchiveException>(() => ArchiveExtractor.Extract(path, Target, new ArchiveLimits()));

        Assert.Contains(expected, error.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public void A_file_that_is_no_archive_is_refused_clearly()
    {
        var path = Write("just text"u8.ToArray());

        Assert.Equal(ArchiveKind.None, ArchiveExtractor.Detect(path));
        var error = Assert.Throws<ArchiveException>(() => ArchiveExtractor.Extract(path, Target, new ArchiveLimits()));
        Assert.Contains("not a zip, tar", error.Message);
    }

    [Fact]
    public void A_truncated_archive_is_refused_and_cleaned_up()
    {
        var whole = Gzip(Tar(new Entry("big.bin", System.Security.Cryptography.RandomNumberGenerator.GetBytes(200_000)), File("b.txt", "b")));
        var path = Write(whole[..(whole.Length / 2)]);

        var error = Assert.ThrowsAny<Exception>(() => ArchiveExtractor.Extract(path, Target, new ArchiveLimits()));

        Assert.True(error is ArchiveException, error.ToString());

        Assert.False(Directory.Exists(Target));
    }
}

using System.IO.Compression;
using System.Text;
using SharpCompress.Compressors.BZip2;

namespace Carml.Orleans.Tests;

/// <summary>Builds archives byte by byte, including the malicious entries a library would refuse to write.</summary>
public static class ArchiveBuilder
{
    public sealed record Entry(string Name, byte[] Data, char Type = '0', string? LinkTarget = null);

    public static Entry File(string name, string text) => new(name, Encoding.UTF8.GetBytes(text));

    public static Entry Symlink(string name, string target) => new(name, [], '2', target);

    /// <summary>A POSIX ustar archive.</summary>
    public static byte[] Tar(params Entry[] entries)
    {
        using var output = new MemoryStream();
        foreach (var entry in entries)
        {
            var header = new byte[512];
            Ascii(header, 0, 100, entry.Name);
            Ascii(header, 100, 8, "0000644");
            Ascii(header, 108, 8, "0000000");
            Ascii(header, 116, 8, "0000000");
            Ascii(header, 124, 12, Convert.ToString(entry.Data.Length, 8).PadLeft(11, '0'));
            Ascii(header, 136, 12, "00000000000");
            header[156] = (byte)entry.Type;
            if (entry.LinkTarget is not null)
            {
                Ascii(header, 157, 100, entry.LinkTarget);
            }

            Ascii(header, 257, 6, "ustar");
            Ascii(header, 263, 2, "00");
            for (var i = 148; i < 156; i++)
            {
                header[i] = (byte)' ';
            }

            var sum = header.Sum(b => b);
            Ascii(header, 148, 8, Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ");
            output.Write(header);
            output.Write(entry.Data);
            output.Write(new byte[(512 - (entry.Data.Length % 512)) % 512]);
        }

        output.Write(new byte[1024]);
        return output.ToArray();
    }

    public static byte[] Zip(params Entry[] entries)
    {
        using var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in entries)
            {
                using var stream = zip.CreateEntry(entry.Name).Open();
                stream.Write(entry.Data);
            }
        }

        return output.ToArray();
    }

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    public static byte[] Bzip2(byte[] data)
    {
        using var output = new MemoryStream();
        using (var bzip2 = BZip2Stream.Create(output, SharpCompress.Compressors.CompressionMode.Compress, false, leaveOpen: true))
        {
            bzip2.Write(data);
        }

        return output.ToArray();
    }

    private static void Ascii(byte[] header, int offset, int length, string value)
    {
        var bytes = Encoding.ASCII.GetBytes(value);
        Array.Copy(bytes, 0, header, offset, Math.Min(bytes.Length, length));
    }
}

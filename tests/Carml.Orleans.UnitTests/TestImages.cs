using SkiaSharp;

namespace Carml.Orleans.Tests;

/// <summary>Small images made with Skia, encoded as the tests need them.</summary>
public static class TestImages
{
    public static SKBitmap Solid(int width, int height, SKColor color)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bitmap.Erase(color);
        return bitmap;
    }

    public static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality = 90)
    {
        using var data = bitmap.Encode(format, quality);
        return data.ToArray();
    }

    public static byte[] SolidPng(int width, int height, SKColor color)
    {
        using var bitmap = Solid(width, height, color);
        return Encode(bitmap, SKEncodedImageFormat.Png);
    }

    /// <summary>
    /// A PNG declaring <paramref name="width"/>×<paramref name="height"/> with one compressed row of pixel data: the header
    /// is valid, the body is tiny, and decoding it in full would need width·height·4 bytes.
    /// </summary>
    public static byte[] PngHeaderOnly(uint width, uint height)
    {
        var png = new List<byte> { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A };
        Chunk(png, "IHDR", [.. BigEndian(width), .. BigEndian(height), 8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
        using var compressed = new MemoryStream();
        using (var zlib = new System.IO.Compression.ZLibStream(compressed, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            zlib.Write(new byte[Math.Min(1 + (width * 3), 1 << 20)]);
        }

        Chunk(png, "IDAT", compressed.ToArray());
        Chunk(png, "IEND", []);
        return [.. png];
    }

    private static void Chunk(List<byte> png, string type, byte[] data)
    {
        byte[] typed = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
        png.AddRange(BigEndian((uint)data.Length));
        png.AddRange(typed);
        png.AddRange(BigEndian(Crc32(typed)));
    }

    private static uint Crc32(IEnumerable<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
            }
        }

        return ~crc;
    }

    private static byte[] BigEndian(uint value) => [(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value];
}

using Carml.Orleans.Interfaces;
using SkiaSharp;

namespace Carml.Orleans.Preprocessing;

/// <summary>
/// Decodes PNG, JPEG, WebP, GIF and BMP bytes with Skia into an opaque RGBA bitmap (transparent pixels are composited on
/// white). The size is read from the header and checked against <see cref="ImageLimits"/> before any pixel is decoded;
/// bytes that are no image, a zero-size image, and truncated or corrupt data are the caller's mistake (InvalidArgument).
/// EXIF orientation is not applied: pixels are used as stored.
/// </summary>
public static class ImageDecoder
{
    public static SKBitmap Decode(byte[] bytes, ImageLimits limits, string what = "the image")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length == 0)
        {
            throw ModelException.InvalidArgument($"{what} is empty (0 bytes).");
        }

        using var stream = new MemoryStream(bytes, writable: false);
        using var codec = SKCodec.Create(stream, out var opened);
        if (codec is null)
        {
            // libpng refuses a zero width or height in IHDR before Skia can report the size: say that, not "truncated".
            if (PngDeclaredSize(bytes) is { } declared && (declared.Width == 0 || declared.Height == 0))
            {
                throw ModelException.InvalidArgument($"{what} has no pixels ({declared.Width}×{declared.Height}).");
            }

            throw ModelException.InvalidArgument(opened == SKCodecResult.IncompleteInput && HasImageSignature(bytes)
                ? $"{what} is truncated: its header ends early."
                : $"{what} is not an image this server decodes (PNG, JPEG, WebP, GIF, BMP): {Describe(opened)}.");
        }

        var (width, height) = (codec.Info.Width, codec.Info.Height);
        if (width <= 0 || height <= 0)
        {
            throw ModelException.InvalidArgument($"{what} has no pixels ({width}×{height}).");
        }

        var pixels = (long)width * height;
        if (pixels > limits.MaxPixels)
        {
            throw new ModelException(ModelErrorKind.PayloadTooLarge,
                $"{what} is {width}×{height} = {pixels} pixels, more than the limit of {limits.MaxPixels} (Carml:Predictors:MaxImagePixels).");
        }

        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var bitmap = new SKBitmap(info);
        try
        {
            var result = codec.GetPixels(info, bitmap.GetPixels());
            if (result != SKCodecResult.Success)
            {
                throw ModelException.InvalidArgument(result == SKCodecResult.IncompleteInput
                    ? $"{what} is truncated: the data ends before the last row ({width}×{height} declared)."
                    : $"{what} cannot be decoded: {Describe(result)}.");
            }

            if (codec.Info.AlphaType != SKAlphaType.Opaque)
            {
                CompositeOnWhite(bitmap);
            }

            return bitmap;
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
    }

    /// <summary>Whether the bytes start like a PNG, JPEG, GIF, WebP or BMP file.</summary>
    public static bool HasImageSignature(ReadOnlySpan<byte> bytes) =>
        bytes.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G'])
        || bytes.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])
        || bytes.StartsWith("GIF8"u8)
        || (bytes.StartsWith("RIFF"u8) && bytes.Length >= 12 && bytes[8..12].SequenceEqual("WEBP"u8))
        || bytes.StartsWith("BM"u8);

    /// <summary>The width and height a PNG's IHDR chunk declares, or null when the bytes do not start with one.</summary>
    private static (uint Width, uint Height)? PngDeclaredSize(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= 24 && bytes.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G']) && bytes[12..16].SequenceEqual("IHDR"u8)
            ? (System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes[16..20]), System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes[20..24]))
            : null;

    private static void CompositeOnWhite(SKBitmap bitmap)
    {
        var span = bitmap.GetPixelSpan();
        for (var i = 0; i < span.Length; i += 4)
        {
            var alpha = span[i + 3];
            if (alpha == 255)
            {
                continue;
            }

            for (var c = 0; c < 3; c++)
            {
                span[i + c] = (byte)((span[i + c] * alpha + 255 * (255 - alpha) + 127) / 255);
            }

            span[i + 3] = 255;
        }
    }

    private static string Describe(SKCodecResult result) => result switch
    {
        SKCodecResult.IncompleteInput => "the data is incomplete",
        SKCodecResult.ErrorInInput => "the data is corrupt",
        SKCodecResult.InvalidInput => "the format is not recognised",
        SKCodecResult.Unimplemented => "the format variant is not supported",
        _ => result.ToString(),
    };
}

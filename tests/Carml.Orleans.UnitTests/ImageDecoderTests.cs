using Carml.Orleans.Interfaces;
using Carml.Orleans.Preprocessing;
using SkiaSharp;

namespace Carml.Orleans.Tests;

public sealed class ImageDecoderTests
{
    private static readonly ImageLimits Limits = new();

    [Theory]
    [InlineData(SKEncodedImageFormat.Png)]
    [InlineData(SKEncodedImageFormat.Jpeg)]
    [InlineData(SKEncodedImageFormat.Webp)]
    public void Png_jpeg_and_webp_images_decode_to_their_size_and_colour(SKEncodedImageFormat format)
    {
        using var source = TestImages.Solid(40, 20, new SKColor(200, 30, 60));

        using var decoded = ImageDecoder.Decode(TestImages.Encode(source, format, 100), Limits);

        Assert.Equal((40, 20), (decoded.Width, decoded.Height));
        var pixel = decoded.GetPixel(10, 10);
        Assert.InRange(pixel.Red, 190, 210);
        Assert.InRange(pixel.Green, 20, 40);
        Assert.InRange(pixel.Blue, 50, 70);
    }

    [Fact]
    public void Bytes_that_are_no_image_are_an_invalid_argument()
    {
        var e = Assert.Throws<ModelException>(() => ImageDecoder.Decode("this is plain text, not a picture"u8.ToArray(), Limits));

        Assert.Equal(ModelErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("not an image", e.Message);
    }

    [Fact]
    public void A_few_bytes_that_are_no_image_are_not_called_truncated()
    {
        var e = Assert.Throws<ModelException>(() => ImageDecoder.Decode("%PDF-1.7"u8.ToArray(), Limits));

        Assert.Contains("not an image", e.Message);
    }

    [Fact]
    public void A_png_cut_inside_its_header_is_truncated()
    {
        var png = TestImages.SolidPng(8, 8, SKColors.Red);

        var e = Assert.Throws<ModelException>(() => ImageDecoder.Decode(png[..20], Limits));

        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Empty_bytes_are_an_invalid_argument()
    {
        var e = Assert.Throws<ModelException>(() => ImageDecoder.Decode([], Limits));

        Assert.Equal(ModelErrorKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public void Truncated_jpeg_is_an_invalid_argument_that_says_truncated()
    {
        using var source = TestImages.Solid(64, 64, SKColors.CornflowerBlue);
        var jpeg = TestImages.Encode(source, SKEncodedImageFormat.Jpeg);

        var e = Assert.Throws<ModelException>(() => ImageDecoder.Decode(jpeg[..(jpeg.Length / 2)], Limits));

        Assert.Equal(ModelErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Zero_width_image_is_an_invalid_argument()
    {
        var e = Assert.Throws<ModelException>(() => ImageDecoder.Decode(TestImages.PngHeaderOnly(0, 10), Limits));

        Assert.Equal(ModelErrorKind.InvalidArgument, e.Kind);
        Assert.Equal("the image has no pixels (0×10).", e.Message);
    }

    [Fact]
    public void Gigantic_image_is_refused_from_its_header_before_any_pixel_is_decoded()
    {
        // 60000 × 60000 = 3.6 gigapixels declared in 33 bytes: decoding would need 14 GB.
        var e = Assert.Throws<ModelException>(() => ImageDecoder.Decode(TestImages.PngHeaderOnly(60000, 60000), Limits));

        Assert.Equal(ModelErrorKind.PayloadTooLarge, e.Kind);
        Assert.Contains("3600000000 pixels", e.Message);
    }

    [Fact]
    public void Transparent_pixels_are_composited_on_white()
    {
        using var source = TestImages.Solid(4, 4, new SKColor(0, 0, 0, 0));

        using var decoded = ImageDecoder.Decode(TestImages.Encode(source, SKEncodedImageFormat.Png), Limits);

        Assert.Equal(new SKColor(255, 255, 255, 255), decoded.GetPixel(1, 1));
    }
}

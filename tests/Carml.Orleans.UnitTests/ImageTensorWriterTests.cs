using System.Runtime.InteropServices;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Preprocessing;
using SkiaSharp;

namespace Carml.Orleans.Tests;

public sealed class ImageTensorWriterTests
{
    private static TensorSpec Paddle(ResizeMode resize = ResizeMode.FitHeightPad) => new("x", TensorDatatype.FP32, [-1, 3, 48, 192])
    {
        Image = new ImagePreprocessing
        {
            Layout = ImageLayout.NCHW,
            ColorMode = ColorMode.BGR,
            Height = 48,
            Width = 192,
            Resize = resize,
            Scale = 1 / 255.0,
            Mean = [0.5],
            Std = [0.5],
        },
    };

    [Theory]
    [InlineData(100, 50, 96)] // ceil(48 · 2) = 96: kept ratio, padded
    [InlineData(1000, 48, 192)] // wider than 4:1: clamped to the target width
    [InlineData(10, 100, 5)] // ceil(48 · 0.1) = 5
    public void Fit_height_pad_scales_to_the_height_and_clamps_the_width_like_paddleocr(int width, int height, int expectedWidth)
    {
        var writer = new ImageTensorWriter(Paddle());

        Assert.Equal((expectedWidth, 48), writer.ResizedSize(width, height));
    }

    [Fact]
    public void Keep_ratio_pad_fits_the_whole_image_inside_the_target()
    {
        var writer = new ImageTensorWriter(Paddle(ResizeMode.KeepRatioPad));

        Assert.Equal((192, 19), writer.ResizedSize(1000, 100));
        Assert.Equal((96, 48), writer.ResizedSize(100, 50));
    }

    [Fact]
    public void Bgr_nchw_tensor_is_normalised_and_padded_with_zero_on_the_right()
    {
        var writer = new ImageTensorWriter(Paddle());
        using var red = TestImages.Solid(100, 50, new SKColor(255, 0, 0));
        var bytes = new byte[writer.BytesPerImage];

        writer.Write(red, bytes);

        var values = MemoryMarshal.Cast<byte, float>(bytes);
        var plane = 48 * 192;
        Assert.Equal([1, 3, 48, 192], writer.Shape(1));
        Assert.Equal(-1f, values[0 * plane + 10 * 192 + 20], 3); // B of a red pixel: (0/255 − 0.5)/0.5
        Assert.Equal(-1f, values[1 * plane + 10 * 192 + 20], 3); // G
        Assert.Equal(1f, values[2 * plane + 10 * 192 + 20], 3); // R: (255/255 − 0.5)/0.5
        Assert.Equal(0f, values[2 * plane + 10 * 192 + 150]); // padding past the 96 resized columns
    }

    [Fact]
    public void Nhwc_uint8_gray_tensor_holds_raw_luma_per_pixel()
    {
        var spec = new TensorSpec("pixels", TensorDatatype.UInt8, [-1, 4, 4, 1])
        {
            Image = new ImagePreprocessing { Layout = ImageLayout.NHWC, ColorMode = ColorMode.GRAY, Height = 4, Width = 4 },
        };
        var writer = new ImageTensorWriter(spec);
        using var gray = TestImages.Solid(8, 8, new SKColor(100, 100, 100));
        var bytes = new byte[writer.BytesPerImage];

        writer.Write(gray, bytes);

        Assert.Equal([1, 4, 4, 1], writer.Shape(1));
        Assert.All(bytes, b => Assert.Equal(100, b));
    }

    [Fact]
    public void Rgb_per_channel_mean_and_std_are_applied_in_order()
    {
        var spec = new TensorSpec("input", TensorDatatype.FP32, [-1, 2, 2, 3])
        {
            Image = new ImagePreprocessing
            {
                Layout = ImageLayout.NHWC, ColorMode = ColorMode.RGB, Height = 2, Width = 2, Scale = 1 / 255.0,
                Mean = [0.485, 0.456, 0.406], Std = [0.229, 0.224, 0.225],
            },
        };
        var writer = new ImageTensorWriter(spec);
        using var white = TestImages.Solid(2, 2, SKColors.White);
        var bytes = new byte[writer.BytesPerImage];

        writer.Write(white, bytes);

        var values = MemoryMarshal.Cast<byte, float>(bytes);
        Assert.Equal((1 - 0.485) / 0.229, values[0], 3);
        Assert.Equal((1 - 0.456) / 0.224, values[1], 3);
        Assert.Equal((1 - 0.406) / 0.225, values[2], 3);
    }
}

using System.Runtime.InteropServices;
using Carml.Orleans.Interfaces;
using SkiaSharp;

namespace Carml.Orleans.Preprocessing;

/// <summary>
/// Writes decoded images into an image input tensor as its manifest describes: resize (bilinear), channel order,
/// normalisation <c>(pixel · scale − mean[c]) / std[c]</c>, padding, layout. One writer per tensor spec; thread-safe.
/// </summary>
public sealed class ImageTensorWriter
{
    private readonly ImagePreprocessing _image;
    private readonly float[] _multiplier;
    private readonly float[] _offset;

    public ImageTensorWriter(TensorSpec input)
    {
        _image = input.Image ?? throw new ArgumentException($"Input '{input.Name}' has no image pre-processing.", nameof(input));
        if (input.Datatype is not (TensorDatatype.FP32 or TensorDatatype.UInt8))
        {
            throw new ArgumentException($"Input '{input.Name}' is {input.Datatype}, not FP32 or UINT8.", nameof(input));
        }

        Input = input;
        var channels = _image.Channels;
        _multiplier = new float[channels];
        _offset = new float[channels];
        for (var c = 0; c < channels; c++)
        {
            var mean = _image.Mean.Count == 1 ? _image.Mean[0] : _image.Mean[c];
            var std = _image.Std.Count == 1 ? _image.Std[0] : _image.Std[c];
            _multiplier[c] = (float)(_image.Scale / std);
            _offset[c] = (float)(-mean / std);
        }
    }

    public TensorSpec Input { get; }

    public int ElementsPerImage => _image.Channels * _image.Height * _image.Width;

    public int BytesPerImage => ElementsPerImage * (Input.Datatype == TensorDatatype.FP32 ? sizeof(float) : 1);

    /// <summary>The tensor shape for a batch of <paramref name="count"/> images.</summary>
    public long[] Shape(int count) => _image.Layout == ImageLayout.NCHW
        ? [count, _image.Channels, _image.Height, _image.Width]
        : [count, _image.Height, _image.Width, _image.Channels];

    /// <summary>The size the image is scaled to before padding, per the resize mode.</summary>
    public (int Width, int Height) ResizedSize(int width, int height)
    {
        var (targetWidth, targetHeight) = (_image.Width, _image.Height);
        switch (_image.Resize)
        {
            case ResizeMode.KeepRatioPad:
                var scale = Math.Min((double)targetWidth / width, (double)targetHeight / height);
                return (Math.Clamp((int)Math.Round(width * scale), 1, targetWidth), Math.Clamp((int)Math.Round(height * scale), 1, targetHeight));
            case ResizeMode.FitHeightPad:
                var fitted = (int)Math.Ceiling(targetHeight * (double)width / height);
                return (Math.Clamp(fitted, 1, targetWidth), targetHeight);
            default:
                return (targetWidth, targetHeight);
        }
    }

    /// <summary>Writes one image into <paramref name="destination"/> (exactly <see cref="BytesPerImage"/> bytes).</summary>
    public void Write(SKBitmap source, Span<byte> destination)
    {
        if (destination.Length != BytesPerImage)
        {
            throw new ArgumentException($"The destination holds {destination.Length} bytes, one image needs {BytesPerImage}.", nameof(destination));
        }

        var (resizedWidth, resizedHeight) = ResizedSize(source.Width, source.Height);
        SKBitmap resized = source;
        var owned = false;
        if (resizedWidth != source.Width || resizedHeight != source.Height)
        {
            resized = new SKBitmap(new SKImageInfo(resizedWidth, resizedHeight, SKColorType.Rgba8888, SKAlphaType.Unpremul));
            owned = true;
            if (!source.ScalePixels(resized, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None)))
            {
                resized.Dispose();
                throw new InvalidOperationException($"Skia could not scale a {source.Width}×{source.Height} image to {resizedWidth}×{resizedHeight}.");
            }
        }

        try
        {
            if (Input.Datatype == TensorDatatype.FP32)
            {
                Fill(resized, MemoryMarshal.Cast<byte, float>(destination), (float)_image.PadValue, _multiplier, _offset);
            }
            else
            {
                // UINT8 inputs take raw pixels (the validator refuses mean, std and scale for them).
                Fill(resized, destination, (byte)Math.Clamp(_image.PadValue, 0, 255), multiplier: null, offset: null);
            }
        }
        finally
        {
            if (owned)
            {
                resized.Dispose();
            }
        }
    }

    private void Fill<T>(SKBitmap resized, Span<T> destination, T pad, float[]? multiplier, float[]? offset)
        where T : unmanaged
    {
        var (height, width, channels) = (_image.Height, _image.Width, _image.Channels);
        var plane = height * width;
        var nchw = _image.Layout == ImageLayout.NCHW;
        var bgr = _image.ColorMode == ColorMode.BGR;
        var gray = _image.ColorMode == ColorMode.GRAY;
        ReadOnlySpan<byte> pixels = resized.GetPixelSpan();
        var rowBytes = resized.RowBytes;
        destination.Fill(pad);
        Span<float> values = stackalloc float[3];
        for (var y = 0; y < resized.Height; y++)
        {
            var row = pixels.Slice(y * rowBytes, resized.Width * 4);
            for (var x = 0; x < resized.Width; x++)
            {
                float r = row[x * 4], g = row[(x * 4) + 1], b = row[(x * 4) + 2];
                if (gray)
                {
                    values[0] = (0.299f * r) + (0.587f * g) + (0.114f * b);
                }
                else
                {
                    values[0] = bgr ? b : r;
                    values[1] = g;
                    values[2] = bgr ? r : b;
                }

                for (var c = 0; c < channels; c++)
                {
                    var index = nchw ? (c * plane) + (y * width) + x : (((y * width) + x) * channels) + c;
                    if (typeof(T) == typeof(float))
                    {
                        var value = (values[c] * multiplier![c]) + offset![c];
                        destination[index] = System.Runtime.CompilerServices.Unsafe.As<float, T>(ref value);
                    }
                    else
                    {
                        var value = (byte)Math.Clamp(values[c] + 0.5f, 0f, 255f);
                        destination[index] = System.Runtime.CompilerServices.Unsafe.As<byte, T>(ref value);
                    }
                }
            }
        }
    }
}

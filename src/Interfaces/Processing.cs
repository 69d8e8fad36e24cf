namespace Carml.Orleans.Interfaces;

/// <summary>How the tensor's dimensions are ordered after the batch dimension.</summary>
[GenerateSerializer]
[Alias("carml.ImageLayout")]
public enum ImageLayout
{
    /// <summary>Channels, height, width (PyTorch, Paddle, most ONNX exports).</summary>
    NCHW = 1,

    /// <summary>Height, width, channels (TensorFlow).</summary>
    NHWC = 2,
}

/// <summary>The channel order the model expects.</summary>
[GenerateSerializer]
[Alias("carml.ColorMode")]
public enum ColorMode
{
    RGB = 1,
    BGR = 2,

    /// <summary>One channel, ITU-R BT.601 luma.</summary>
    GRAY = 3,
}

/// <summary>How an image is brought to the model's height and width.</summary>
[GenerateSerializer]
[Alias("carml.ResizeMode")]
public enum ResizeMode
{
    /// <summary>Scale each axis independently to the target size (the aspect ratio may change).</summary>
    Stretch = 1,

    /// <summary>Scale by one factor so the image fits inside the target, place it top-left, pad the rest.</summary>
    KeepRatioPad = 2,

    /// <summary>
    /// Scale to the target height keeping the ratio; the width is clamped to the target width and the rest padded on the
    /// right (PaddleOCR's <c>resize_norm_img</c> for text lines).
    /// </summary>
    FitHeightPad = 3,
}

/// <summary>When a classification output is turned into probabilities.</summary>
[GenerateSerializer]
[Alias("carml.SoftmaxMode")]
public enum SoftmaxMode
{
    /// <summary>Only when a row is not already a distribution (values outside [0, 1] or not summing to 1).</summary>
    Auto = 1,
    Always = 2,
    Never = 3,
}

/// <summary>
/// Image pre-processing of an input tensor: decode, convert to <see cref="ColorMode"/>, resize to
/// <see cref="Height"/>×<see cref="Width"/>, then per channel <c>(pixel · Scale − Mean[c]) / Std[c]</c> with pixels in 0..255,
/// padding with <see cref="PadValue"/> (in the normalised space) where the resized image does not cover the target.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("carml.ImagePreprocessing")]
public sealed record ImagePreprocessing
{
    [Id(0)] public ImageLayout Layout { get; init; } = ImageLayout.NCHW;
    [Id(1)] public ColorMode ColorMode { get; init; } = ColorMode.RGB;
    [Id(2)] public int Height { get; init; }
    [Id(3)] public int Width { get; init; }
    [Id(4)] public ResizeMode Resize { get; init; } = ResizeMode.Stretch;
    [Id(5)] public IReadOnlyList<double> Mean { get; init; } = [0];
    [Id(6)] public IReadOnlyList<double> Std { get; init; } = [1];
    [Id(7)] public double Scale { get; init; } = 1;
    [Id(8)] public double PadValue { get; init; }

    /// <summary>The channel count the color mode gives.</summary>
    public int Channels => ColorMode == ColorMode.GRAY ? 1 : 3;
}

/// <summary>
/// Classification post-processing of an output tensor [batch, classes]: softmax when needed, the top
/// <see cref="FeatureLimit"/> classes with labels from the manifest's <c>labels</c>, a label file at
/// <see cref="FeaturesUrl"/>, or a stored artifact <see cref="FeaturesSha256"/> (one label a line).
/// </summary>
[GenerateSerializer, Immutable]
[Alias("carml.ClassificationPostprocessing")]
public sealed record ClassificationPostprocessing
{
    public const int DefaultFeatureLimit = 5;

    [Id(0)] public SoftmaxMode Softmax { get; init; } = SoftmaxMode.Auto;
    [Id(1)] public int FeatureLimit { get; init; } = DefaultFeatureLimit;
    [Id(2)] public string? FeaturesUrl { get; init; }
    [Id(3)] public string? FeaturesSha256 { get; init; }
}

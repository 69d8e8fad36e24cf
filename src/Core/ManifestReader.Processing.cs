using System.Globalization;
using Carml.Orleans.Interfaces;
using YamlDotNet.RepresentationModel;

namespace Carml.Orleans.Core;

/// <summary>The per-tensor processing fields: <c>type: image</c> on inputs, <c>type: classification</c> on outputs.</summary>
public static partial class ManifestReader
{
    public const string ImageType = "image";
    public const string ClassificationType = "classification";
    public const string RawType = "raw";

    private static readonly string[] ImageKeys = ["layout", "color_mode", "dimensions", "resize", "mean", "std", "scale", "pad_value", "element_type"];
    private static readonly string[] ClassificationKeys = ["softmax", "feature_limit", "features_url", "features_sha256"];

    private static readonly Dictionary<string, ResizeMode> ResizeModes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["stretch"] = ResizeMode.Stretch,
        ["keep_ratio_pad"] = ResizeMode.KeepRatioPad,
        ["fit_height_pad"] = ResizeMode.FitHeightPad,
    };

    private static readonly Dictionary<string, SoftmaxMode> SoftmaxModes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["auto"] = SoftmaxMode.Auto,
        ["always"] = SoftmaxMode.Always,
        ["never"] = SoftmaxMode.Never,
    };

    private static TensorSpec WithProcessing(TensorSpec spec, Dictionary<string, YamlNode> tensor, string where, List<string> problems)
    {
        var type = tensor.TryGetValue("type", out var typeNode) ? Scalar(typeNode, "type", problems)?.ToLowerInvariant() : null;
        if (type is not (null or RawType or ImageType or ClassificationType))
        {
            problems.Add($"{where}: type '{type}' is not one of {RawType}, {ImageType} (inputs), {ClassificationType} (outputs)");
            return spec;
        }

        foreach (var key in ImageKeys.Where(tensor.ContainsKey).Where(_ => type != ImageType))
        {
            problems.Add($"{where}: '{key}' applies to type: {ImageType} only");
        }

        foreach (var key in ClassificationKeys.Where(tensor.ContainsKey).Where(_ => type != ClassificationType))
        {
            problems.Add($"{where}: '{key}' applies to type: {ClassificationType} only");
        }

        return type switch
        {
            ImageType => spec with { Image = ReadImage(spec, tensor, where, problems) },
            ClassificationType => spec with { Classification = ReadClassification(tensor, where, problems) },
            _ => spec,
        };
    }

    private static ImagePreprocessing ReadImage(TensorSpec spec, Dictionary<string, YamlNode> tensor, string where, List<string> problems)
    {
        var image = new ImagePreprocessing();
        if (OptionalString(tensor, "layout", problems) is { } layout)
        {
            image = layout.ToUpperInvariant() switch
            {
                "NCHW" or "CHW" => image with { Layout = ImageLayout.NCHW },
                "NHWC" or "HWC" => image with { Layout = ImageLayout.NHWC },
                _ => Problem(image, $"{where}: layout '{layout}' is not NCHW or NHWC", problems),
            };
        }

        if (OptionalString(tensor, "color_mode", problems) is { } color)
        {
            image = EnumNames.TryParse<ColorMode>(color, out var mode)
                ? image with { ColorMode = mode }
                : Problem(image, $"{where}: color_mode '{color}' is not RGB, BGR or GRAY", problems);
        }

        if (OptionalString(tensor, "resize", problems) is { } resize)
        {
            image = ResizeModes.TryGetValue(resize, out var mode)
                ? image with { Resize = mode }
                : Problem(image, $"{where}: resize '{resize}' is not one of {string.Join(", ", ResizeModes.Keys)}", problems);
        }

        if (OptionalString(tensor, "element_type", problems) is { } elementType)
        {
            var name = elementType.ToLowerInvariant() switch { "float32" or "float" => "FP32", "uint8" => "UINT8", _ => elementType.ToUpperInvariant() };
            if (!TensorDatatypes.TryParse(name, out var datatype))
            {
                problems.Add($"{where}: element_type '{elementType}' is not a tensor datatype");
            }
            else if (datatype != spec.Datatype)
            {
                problems.Add($"{where}: element_type {datatype.ToName()} differs from the tensor's datatype {spec.Datatype.ToName()}");
            }
        }

        // Height and width: from dimensions [height, width], else from the tensor's shape when fixed there.
        var (heightIndex, widthIndex) = image.Layout == ImageLayout.NCHW ? (2, 3) : (1, 2);
        int height = 0, width = 0;
        if (spec.Shape.Count == 4)
        {
            height = (int)Math.Max(0, Math.Min(int.MaxValue, spec.Shape[heightIndex]));
            width = (int)Math.Max(0, Math.Min(int.MaxValue, spec.Shape[widthIndex]));
        }

        if (tensor.TryGetValue("dimensions", out var dimensionsNode))
        {
            var dims = Numbers(dimensionsNode, $"{where}: dimensions", problems);
            if (dims is { Count: 2 } && dims.All(d => d >= 1 && d <= 65536 && d == Math.Floor(d)))
            {
                height = (int)dims[0];
                width = (int)dims[1];
            }
            else if (dims is not null)
            {
                problems.Add($"{where}: dimensions must be [height, width], two whole numbers from 1 to 65536");
            }
        }

        image = image with { Height = height, Width = width };
        if (tensor.TryGetValue("mean", out var meanNode) && Numbers(meanNode, $"{where}: mean", problems) is { } mean)
        {
            image = image with { Mean = mean };
        }

        if (tensor.TryGetValue("std", out var stdNode) && Numbers(stdNode, $"{where}: std", problems) is { } std)
        {
            image = image with { Std = std };
        }

        if (tensor.TryGetValue("scale", out var scaleNode) && Number(scaleNode, $"{where}: scale", problems) is { } scale)
        {
            image = image with { Scale = scale };
        }

        if (tensor.TryGetValue("pad_value", out var padNode) && Number(padNode, $"{where}: pad_value", problems) is { } pad)
        {
            image = image with { PadValue = pad };
        }

        return image;
    }

    private static ClassificationPostprocessing ReadClassification(Dictionary<string, YamlNode> tensor, string where, List<string> problems)
    {
        var classification = new ClassificationPostprocessing
        {
            FeaturesUrl = OptionalString(tensor, "features_url", problems),
            FeaturesSha256 = OptionalString(tensor, "features_sha256", problems)?.ToLowerInvariant(),
        };
        if (OptionalString(tensor, "softmax", problems) is { } softmax)
        {
            classification = SoftmaxModes.TryGetValue(softmax, out var mode)
                ? classification with { Softmax = mode }
                : softmax.ToLowerInvariant() switch
                {
                    "true" or "yes" => classification with { Softmax = SoftmaxMode.Always },
                    "false" or "no" => classification with { Softmax = SoftmaxMode.Never },
                    _ => Problem(classification, $"{where}: softmax '{softmax}' is not auto, always or never", problems),
                };
        }

        if (OptionalString(tensor, "feature_limit", problems) is { } limit)
        {
            classification = int.TryParse(limit, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
                ? classification with { FeatureLimit = value }
                : Problem(classification, $"{where}: feature_limit must be a whole number, got '{limit}'", problems);
        }

        return classification;
    }

    private static T Problem<T>(T value, string problem, List<string> problems)
    {
        problems.Add(problem);
        return value;
    }

    /// <summary>One number, or a list of numbers; each a decimal or a fraction such as <c>1/255</c>.</summary>
    private static List<double>? Numbers(YamlNode node, string where, List<string> problems)
    {
        if (node is YamlScalarNode)
        {
            return Number(node, where, problems) is { } single ? [single] : null;
        }

        if (node is not YamlSequenceNode sequence)
        {
            problems.Add($"{where} must be a number or a list of numbers");
            return null;
        }

        var values = new List<double>();
        foreach (var item in sequence.Children)
        {
            if (Number(item, where, problems) is not { } value)
            {
                return null;
            }

            values.Add(value);
        }

        return values;
    }

    private static double? Number(YamlNode node, string where, List<string> problems)
    {
        var text = (node as YamlScalarNode)?.Value;
        if (text is not null)
        {
            var slash = text.IndexOf('/', StringComparison.Ordinal);
            if (slash > 0
                && double.TryParse(text[..slash], NumberStyles.Float, CultureInfo.InvariantCulture, out var numerator)
                && double.TryParse(text[(slash + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var denominator)
                && denominator != 0)
            {
                return numerator / denominator;
            }

            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
            {
                return value;
            }
        }

        problems.Add($"{where}: '{text ?? "(a list or mapping)"}' is not a number (decimals or fractions such as 1/255)");
        return null;
    }
}

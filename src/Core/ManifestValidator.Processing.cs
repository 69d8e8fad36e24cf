using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>Checks the image pre-processing and classification post-processing of a manifest's tensors.</summary>
public static partial class ManifestValidator
{
    public const int MaxFeatureLimit = 1000;

    private static void ValidateProcessing(ModelManifest manifest, List<string> problems)
    {
        foreach (var output in manifest.Outputs.Where(o => o.Image is not null))
        {
            problems.Add($"outputs '{output.Name}': type: image applies to inputs only");
        }

        foreach (var input in manifest.Inputs.Where(i => i.Classification is not null))
        {
            problems.Add($"inputs '{input.Name}': type: classification applies to outputs only");
        }

        foreach (var input in manifest.Inputs)
        {
            if (input.Image is { } image)
            {
                ValidateImage(input, image, problems);
            }
        }

        foreach (var output in manifest.Outputs)
        {
            if (output.Classification is { } classification)
            {
                ValidateClassification(manifest, output, classification, problems);
            }
        }
    }

    private static void ValidateImage(TensorSpec input, ImagePreprocessing image, List<string> problems)
    {
        var where = $"inputs '{input.Name}'";
        if (input.Datatype is not (TensorDatatype.FP32 or TensorDatatype.UInt8))
        {
            problems.Add($"{where}: an image input must be FP32 or UINT8, not {input.Datatype.ToName()}");
        }

        if (input.Shape.Count != 4)
        {
            problems.Add($"{where}: an image input needs a 4-dimensional shape (batch first, then {image.Layout.ToString()[1..]}), got {TensorDatatypes.FormatShape(input.Shape)}");
            return;
        }

        var (channelIndex, heightIndex, widthIndex) = image.Layout == ImageLayout.NCHW ? (1, 2, 3) : (3, 1, 2);
        if (input.Shape[channelIndex] != image.Channels)
        {
            problems.Add($"{where}: color_mode {image.ColorMode} gives {image.Channels} channel(s) but the shape's channel dimension ({image.Layout}) is {input.Shape[channelIndex]}");
        }

        if (image.Height <= 0 || image.Width <= 0)
        {
            problems.Add($"{where}: the image height and width are variable in the shape: give dimensions: [height, width]");
        }
        else
        {
            if (input.Shape[heightIndex] > 0 && input.Shape[heightIndex] != image.Height)
            {
                problems.Add($"{where}: dimensions height {image.Height} differs from the shape's {input.Shape[heightIndex]}");
            }

            if (input.Shape[widthIndex] > 0 && input.Shape[widthIndex] != image.Width)
            {
                problems.Add($"{where}: dimensions width {image.Width} differs from the shape's {input.Shape[widthIndex]}");
            }
        }

        if (image.Mean.Count is not 1 && image.Mean.Count != image.Channels)
        {
            problems.Add($"{where}: mean needs 1 or {image.Channels} values, got {image.Mean.Count}");
        }

        if (image.Std.Count is not 1 && image.Std.Count != image.Channels)
        {
            problems.Add($"{where}: std needs 1 or {image.Channels} values, got {image.Std.Count}");
        }

        if (image.Std.Any(s => s == 0))
        {
            problems.Add($"{where}: std must not contain 0");
        }

        if (image.Scale <= 0)
        {
            problems.Add($"{where}: scale must be positive, got {image.Scale}");
        }

        if (input.Datatype == TensorDatatype.UInt8 && (image.Scale != 1 || image.Mean.Any(m => m != 0) || image.Std.Any(s => s != 1)))
        {
            problems.Add($"{where}: a UINT8 image input takes raw pixels: leave out mean, std and scale");
        }
    }

    private static void ValidateClassification(ModelManifest manifest, TensorSpec output, ClassificationPostprocessing classification, List<string> problems)
    {
        var where = $"outputs '{output.Name}'";
        if (output.Datatype is not (TensorDatatype.FP32 or TensorDatatype.FP64))
        {
            problems.Add($"{where}: a classification output must be FP32 or FP64, not {output.Datatype.ToName()}");
        }

        if (output.Shape.Count != 2)
        {
            problems.Add($"{where}: a classification output needs the shape [batch, classes], got {TensorDatatypes.FormatShape(output.Shape)}");
        }

        if (classification.FeatureLimit is < 1 or > MaxFeatureLimit)
        {
            problems.Add($"{where}: feature_limit must be from 1 to {MaxFeatureLimit}, got {classification.FeatureLimit}");
        }

        if (classification.FeaturesUrl is not null && classification.FeaturesSha256 is not null)
        {
            problems.Add($"{where}: give one of features_url or features_sha256");
        }

        if (classification.FeaturesUrl is { } url
            && (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https" or "s3" or "file")))
        {
            problems.Add($"{where}: features_url '{url}' is not an absolute http, https, s3 or file URL");
        }

        if (classification.FeaturesSha256 is { } sha && !IsSha256(sha))
        {
            problems.Add($"{where}: features_sha256 '{sha}' must be 64 hexadecimal characters");
        }

        var fromFile = classification.FeaturesUrl is not null || classification.FeaturesSha256 is not null;
        if (!fromFile && manifest.Labels.Count > 0 && output.Shape.Count == 2 && output.Shape[1] > 0 && manifest.Labels.Count != output.Shape[1])
        {
            problems.Add($"{where}: {output.Shape[1]} classes but labels has {manifest.Labels.Count} entries");
        }
    }
}

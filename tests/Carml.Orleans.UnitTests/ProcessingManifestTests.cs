using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Tests;

public sealed class ProcessingManifestTests
{
    private static string RepositoryFile(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Carml.Orleans.sln")))
            {
                return Path.Combine([dir.FullName, .. parts]);
            }
        }

        throw new InvalidOperationException("Carml.Orleans.sln not found.");
    }

    [Fact]
    public void Ppocr_classifier_manifest_reads_its_paddleocr_pre_processing()
    {
        var manifest = ManifestReader.Parse(File.ReadAllText(RepositoryFile("models", "ppocr-cls", "manifest.yaml")));

        var image = Assert.Single(manifest.Inputs).Image!;
        Assert.Equal(ImageLayout.NCHW, image.Layout);
        Assert.Equal(ColorMode.BGR, image.ColorMode);
        Assert.Equal((48, 192), (image.Height, image.Width));
        Assert.Equal(ResizeMode.FitHeightPad, image.Resize);
        Assert.Equal(1 / 255.0, image.Scale, 12);
        Assert.Equal([0.5, 0.5, 0.5], image.Mean);
        var classification = Assert.Single(manifest.Outputs).Classification!;
        Assert.Equal(SoftmaxMode.Auto, classification.Softmax);
        Assert.Equal(2, classification.FeatureLimit);
        Assert.Equal(["0", "180"], manifest.Labels);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("RGB,BGR")]
    [InlineData("CMYK")]
    public void A_color_mode_is_one_of_the_names_never_a_number_or_a_list(string color)
    {
        var e = Assert.Throws<ModelException>(() => ManifestReader.Parse($$"""
            name: bad
            version: "1"
            inputs:
              - {name: x, datatype: FP32, shape: [-1, 3, 8, 8], type: image, color_mode: "{{color}}"}
            outputs:
              - {name: y, datatype: FP32, shape: [-1, 2]}
            """));

        Assert.Contains($"color_mode '{color}' is not RGB, BGR or GRAY", string.Join("\n", e.Problems));
    }

    [Fact]
    public void Dimensions_default_to_the_fixed_height_and_width_of_the_shape()
    {
        var manifest = ManifestReader.Parse("""
            name: net
            version: "1"
            inputs:
              - {name: data, datatype: FP32, shape: [1, 224, 224, 3], type: image, layout: NHWC, mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375]}
            outputs:
              - {name: prob, datatype: FP32, shape: [1, 1000], type: classification, features_url: "https://example.com/synset.txt"}
            """);

        var image = manifest.Inputs[0].Image!;
        Assert.Equal((224, 224), (image.Height, image.Width));
        Assert.Equal(ResizeMode.Stretch, image.Resize);
        Assert.Equal("https://example.com/synset.txt", manifest.Outputs[0].Classification!.FeaturesUrl);
    }

    [Fact]
    public void Every_processing_problem_is_reported_at_once()
    {
        var e = Assert.Throws<ModelException>(() => ManifestReader.Parse("""
            name: bad
            version: "1"
            inputs:
              - name: x
                datatype: INT64
                shape: [-1, 3, -1, -1]
                type: image
                layout: CWH
                color_mode: GRAY
                resize: squash
                mean: [1, 2]
                std: 0
                scale: -1
                softmax: auto
            outputs:
              - name: y
                datatype: FP32
                shape: [-1, 3]
                type: classification
                feature_limit: 0
                features_url: not-a-url
                layout: NCHW
              - {name: z, datatype: FP32, shape: [-1], type: picture}
            labels: [a, b]
            """));

        var problems = string.Join("\n", e.Problems);
        Assert.Contains("layout 'CWH' is not NCHW or NHWC", problems);
        Assert.Contains("resize 'squash'", problems);
        Assert.Contains("'softmax' applies to type: classification only", problems);
        Assert.Contains("'layout' applies to type: image only", problems);
        Assert.Contains("type 'picture'", problems);
        Assert.Contains("must be FP32 or UINT8", problems);
        Assert.Contains("gives 1 channel(s)", problems);
        Assert.Contains("give dimensions: [height, width]", problems);
        Assert.Contains("mean needs 1 or 1 values, got 2", problems);
        Assert.Contains("std must not contain 0", problems);
        Assert.Contains("scale must be positive", problems);
        Assert.Contains("feature_limit must be from 1", problems);
        Assert.Contains("features_url 'not-a-url'", problems);
        Assert.True(e.Problems.Length >= 13, problems);
    }

    [Fact]
    public void Labels_must_match_the_number_of_classes()
    {
        var e = Assert.Throws<ModelException>(() => ManifestReader.Parse("""
            name: bad
            version: "1"
            inputs: [{name: x, datatype: FP32, shape: [-1, 3, 8, 8], type: image}]
            outputs: [{name: y, datatype: FP32, shape: [-1, 3], type: classification}]
            labels: [a, b]
            """));

        Assert.Contains("3 classes but labels has 2 entries", e.Message);
    }

    [Fact]
    public void Image_on_an_output_and_classification_on_an_input_are_refused()
    {
        var e = Assert.Throws<ModelException>(() => ManifestReader.Parse("""
            name: bad
            version: "1"
            inputs: [{name: x, datatype: FP32, shape: [-1, 2], type: classification}]
            outputs: [{name: y, datatype: FP32, shape: [-1, 3, 8, 8], type: image}]
            """));

        Assert.Contains("type: image applies to inputs only", e.Message);
        Assert.Contains("type: classification applies to outputs only", e.Message);
    }

    [Fact]
    public void Same_processing_is_equivalent_and_different_normalisation_is_not()
    {
        var text = File.ReadAllText(RepositoryFile("models", "ppocr-cls", "manifest.yaml"));

        var first = ManifestReader.Parse(text);
        var again = ManifestReader.Parse(text);
        var otherMean = ManifestReader.Parse(text.Replace("mean: [0.5, 0.5, 0.5]", "mean: [0.4, 0.5, 0.5]", StringComparison.Ordinal));
        var otherLimit = ManifestReader.Parse(text.Replace("feature_limit: 2", "feature_limit: 1", StringComparison.Ordinal));

        Assert.True(ManifestComparer.Equivalent(first, again));
        Assert.False(ManifestComparer.Equivalent(first, otherMean));
        Assert.False(ManifestComparer.Equivalent(first, otherLimit));
    }
}

using Carml.Orleans.Onnx.Manifests;

namespace Carml.Orleans.Onnx.Tests;

public sealed class GeneratedModelManifestTests
{
    [Fact]
    public void Strings_that_yaml_would_misread_are_quoted()
    {
        var manifest = new GeneratedModelManifest
        {
            Name = "true",
            Version = "2",
            Description = "ratio: 3 # not a comment",
            Inputs = [new ManifestTensor("x", "FP32", [-1, 2])],
            Outputs = [new ManifestTensor("y", "FP32", [-1])],
            Labels = ["a,b", "plain", "1.5", "say \"hi\""],
            Attributes = [new("owner", "team")],
        };

        var yaml = manifest.ToYaml();

        Assert.Contains("name: \"true\"\n", yaml);
        Assert.Contains("version: \"2\"\n", yaml);
        Assert.Contains("description: \"ratio: 3 # not a comment\"\n", yaml);
        Assert.Contains("labels: [\"a,b\", plain, \"1.5\", \"say \\\"hi\\\"\"]\n", yaml);
        Assert.Contains("attributes:\n  owner: \"team\"\n", yaml);
        Assert.DoesNotContain("license:", yaml);
        Assert.DoesNotContain("source:", yaml);
    }

    [Fact]
    public void Tensor_entries_come_from_graph_values_with_minus_one_for_symbolic_dimensions()
    {
        var tensor = ManifestTensor.FromValueInfo(new OnnxValueInfo("x", OnnxDataType.Int64, ["batch", 7]));

        Assert.Equal("x", tensor.Name);
        Assert.Equal("INT64", tensor.Datatype);
        Assert.Equal([-1L, 7L], tensor.Shape);
    }
}

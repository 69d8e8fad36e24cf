using Carml.Orleans.Onnx;
using Carml.Orleans.Onnx.Iris;

namespace Carml.Orleans.Tests;

/// <summary>Models the tests register: the trained Iris sample, and a small model covering every common datatype.</summary>
public static class TestModels
{
    private static readonly Lazy<TrainedIrisModel> IrisModel = new(() => IrisSampleModel.Build(RepositoryPaths.IrisCsv));

    private static readonly Lazy<IReadOnlyList<IrisSample>> Rows = new(() => IrisDataset.Load(RepositoryPaths.IrisCsv).Samples);

    public static TrainedIrisModel Iris => IrisModel.Value;

    public static IReadOnlyList<IrisSample> IrisRows => Rows.Value;

    public static string IrisManifest(string name, string version) =>
        Iris.CreateManifest().ToYaml()
            .Replace("name: iris", $"name: {name}", StringComparison.Ordinal)
            .Replace("version: \"1\"", $"version: \"{version}\"", StringComparison.Ordinal);

    /// <summary>
    /// f64 FP64 [b,2] → f64_out = 2·f64; i32 INT32 [b] → i32_out = i32 + 1; i64 INT64 [b] → i64_out = −i64;
    /// u8 UINT8 [b,3] → u8_out = u8; flag BOOL [b] → flag_out = ¬flag.
    /// </summary>
    /// <remarks>A distinct <paramref name="graphName"/> gives distinct file bytes (and SHA-256).</remarks>
    public static byte[] TypedModel(string graphName = "typed")
    {
        var graph = new OnnxGraphBuilder(graphName);
        var f64 = graph.AddInput("f64", OnnxDataType.Double, "batch", 2);
        var i32 = graph.AddInput("i32", OnnxDataType.Int32, "batch");
        var i64 = graph.AddInput("i64", OnnxDataType.Int64, "batch");
        var u8 = graph.AddInput("u8", OnnxDataType.UInt8, "batch", 3);
        var flag = graph.AddInput("flag", OnnxDataType.Bool, "batch");
        var two = graph.AddInitializer(OnnxTensor.FromDoubles("two", [], [2.0]));
        var one = graph.AddInitializer(OnnxTensor.FromInt32s("one", [], [1]));
        graph.AddNode("Mul", [f64, two], "f64_out");
        graph.AddNode("Add", [i32, one], "i32_out");
        graph.AddNode("Neg", [i64], "i64_out");
        graph.AddNode("Identity", [u8], "u8_out");
        graph.AddNode("Not", [flag], "flag_out");
        graph.AddOutput("f64_out", OnnxDataType.Double, "batch", 2);
        graph.AddOutput("i32_out", OnnxDataType.Int32, "batch");
        graph.AddOutput("i64_out", OnnxDataType.Int64, "batch");
        graph.AddOutput("u8_out", OnnxDataType.UInt8, "batch", 3);
        graph.AddOutput("flag_out", OnnxDataType.Bool, "batch");
        return new OnnxModel(graph.Build()).ToBytes();
    }

    public static string TypedManifest(string name, string version = "1") => $$"""
        name: {{name}}
        version: "{{version}}"
        framework: onnxruntime
        max_batch_size: 8
        inputs:
          - {name: f64, datatype: FP64, shape: [-1, 2]}
          - {name: i32, datatype: INT32, shape: [-1]}
          - {name: i64, datatype: INT64, shape: [-1]}
          - {name: u8, datatype: UINT8, shape: [-1, 3]}
          - {name: flag, datatype: BOOL, shape: [-1]}
        outputs:
          - {name: f64_out, datatype: FP64, shape: [-1, 2]}
          - {name: i32_out, datatype: INT32, shape: [-1]}
          - {name: i64_out, datatype: INT64, shape: [-1]}
          - {name: u8_out, datatype: UINT8, shape: [-1, 3]}
          - {name: flag_out, datatype: BOOL, shape: [-1]}
        """;
}

public static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    public static string IrisCsv => Path.Combine(Root, "data", "iris.csv");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Carml.Orleans.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Carml.Orleans.sln not found above {AppContext.BaseDirectory}.");
    }
}

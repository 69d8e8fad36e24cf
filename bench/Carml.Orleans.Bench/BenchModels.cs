using System.Globalization;
using Carml.Orleans.Onnx.Iris;
using Carml.Orleans.Onnx.Synthetic;

namespace Carml.Orleans.Bench;

/// <summary>
/// A model under test: its ONNX bytes, the manifest Carml registers it with (batching settings included), and one
/// FP32 input whose per-row shape the load generator fills.
/// </summary>
internal sealed record BenchModel(string Name, byte[] Onnx, string InputName, long[] RowShape, string Manifest, int[] Concurrency)
{
    public long RowElements => RowShape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Deterministic input rows, as little-endian FP32 bytes.</summary>
    public byte[] Input(int rows)
    {
        var values = new float[rows * RowElements];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = ((i * 7919) % 1000) / 1000f;
        }

        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
    }

    public long[] Shape(int rows) => [rows, .. RowShape];

    /// <summary>The models of the issue: the Iris sample, a 256-512-10 MLP and a ResNet-50-shaped graph.</summary>
    public static IReadOnlyList<BenchModel> Create(string repositoryRoot, IReadOnlySet<string> names, int[] concurrency, string resnetRuntime = DefaultResNetRuntime)
    {
        var models = new List<BenchModel>();
        if (names.Contains("iris"))
        {
            var iris = IrisSampleModel.Build(Path.Combine(repositoryRoot, "data", "iris.csv"));
            // Registered under its own name so the benchmark's batching settings apply (the standalone sample stays as it is).
            models.Add(new BenchModel("iris-bench", iris.OnnxBytes, "features", [4], SmallManifest("iris-bench", "features", 4, iris.CreateManifest().Outputs.Select(o => (o.Name, o.Datatype, o.Shape[^1])).ToArray()), concurrency));
        }

        if (names.Contains("mlp"))
        {
            var mlp = MlpModelFactory.Create(256, [512], 10, seed: 0).ToOnnxModel("mlp").ToBytes();
            models.Add(new BenchModel("mlp", mlp, "input", [256], SmallManifest("mlp", "input", 256, [("output", "FP32", 10)]), concurrency));
        }

        if (names.Contains("resnet50"))
        {
            var resnet = ResNet50ModelFactory.Create(seed: 0).ToBytes();
            var manifest = """
                name: resnet50
                version: "1"
                max_batch_size: 32
                inputs: [{name: input, datatype: FP32, shape: [-1, 3, 224, 224]}]
                outputs: [{name: output, datatype: FP32, shape: [-1, 1000]}]
                dynamic_batching: {max_queue_delay_microseconds: 0}

                """ + $"runtime: {resnetRuntime}\n";
            models.Add(new BenchModel("resnet50", resnet, "input", [3, 224, 224], manifest, [.. concurrency.Where(c => c <= 16)]));
        }

        return models;
    }

    /// <summary>Two single-threaded runs at once: both cores, batches formed from what queues meanwhile.</summary>
    public const string DefaultResNetRuntime = "{intra_op_threads: 1, max_concurrent_runs: 2}";

    private static string SmallManifest(string name, string input, int width, (string Name, string Datatype, long Width)[] outputs) =>
        string.Create(CultureInfo.InvariantCulture, $$"""
            name: {{name}}
            version: "1"
            max_batch_size: 64
            inputs: [{name: {{input}}, datatype: FP32, shape: [-1, {{width}}]}]
            outputs: [{{string.Join(", ", outputs.Select(o => o.Width < 0 ? $"{{name: {o.Name}, datatype: {o.Datatype}, shape: [-1]}}" : $"{{name: {o.Name}, datatype: {o.Datatype}, shape: [-1, {o.Width}]}}"))}}]
            dynamic_batching: {max_queue_delay_microseconds: 0}
            runtime: {intra_op_threads: 1, max_concurrent_runs: 2}
            """);
}

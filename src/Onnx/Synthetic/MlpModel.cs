using System.Collections.Immutable;
using System.Globalization;

namespace Carml.Orleans.Onnx.Synthetic;

/// <summary>
/// One fully connected layer: <c>y = x · W + b</c>, then Relu for hidden layers. <see cref="Weights"/> is row-major
/// [<see cref="InputSize"/>, <see cref="OutputSize"/>], the layout ONNX MatMul takes for <c>x · W</c>.
/// </summary>
public sealed record MlpLayer(int InputSize, int OutputSize, ImmutableArray<float> Weights, ImmutableArray<float> Bias, bool AppliesRelu)
{
    public float GetWeight(int input, int output) => Weights[(input * OutputSize) + output];
}

/// <summary>
/// A float multilayer perceptron: hidden layers with Relu, then a linear layer and Softmax over the last axis.
/// Made by <see cref="MlpModelFactory"/>; <see cref="PredictProbabilities"/> evaluates it in plain C#, and
/// <see cref="ToOnnxModel"/> exports it with input <c>input</c> FP32 [batch, InputSize] and output <c>output</c>
/// FP32 [batch, OutputSize].
/// </summary>
public sealed class MlpModel
{
    public const string InputName = "input";
    public const string OutputName = "output";
    public const string BatchDimension = "batch";

    internal MlpModel(IReadOnlyList<MlpLayer> layers, int seed)
    {
        Layers = layers;
        Seed = seed;
    }

    public int InputSize => Layers[0].InputSize;

    public int OutputSize => Layers[^1].OutputSize;

    public IReadOnlyList<MlpLayer> Layers { get; }

    public int Seed { get; }

    public long ParameterCount => Layers.Sum(l => (long)l.Weights.Length + l.Bias.Length);

    /// <summary>The layer widths, e.g. "16-64-64-4".</summary>
    public string Architecture =>
        string.Join("-", Layers.Select(l => l.InputSize).Append(OutputSize).Select(w => w.ToString(CultureInfo.InvariantCulture)));

    /// <summary>Forward pass for one sample, accumulating in double precision.</summary>
    public float[] PredictProbabilities(ReadOnlySpan<float> input)
    {
        if (input.Length != InputSize)
        {
            throw new ArgumentException($"Expected {InputSize} inputs but got {input.Length}.", nameof(input));
        }

        var activations = new double[input.Length];
        for (var i = 0; i < input.Length; i++)
        {
            activations[i] = input[i];
        }

        foreach (var layer in Layers)
        {
            var next = new double[layer.OutputSize];
            for (var o = 0; o < layer.OutputSize; o++)
            {
                double sum = layer.Bias[o];
                for (var i = 0; i < layer.InputSize; i++)
                {
                    sum += activations[i] * layer.Weights[(i * layer.OutputSize) + o];
                }

                next[o] = layer.AppliesRelu ? Math.Max(0, sum) : sum;
            }

            activations = next;
        }

        Softmax.InPlace(activations);
        return [.. activations.Select(p => (float)p)];
    }

    /// <summary>
    /// The ONNX graph: per layer MatMul(W) → Add(b) → Relu (hidden layers only), then Softmax(axis=1).
    /// Initializers are named <c>layer{i}_weight</c> and <c>layer{i}_bias</c>.
    /// </summary>
    public OnnxModel ToOnnxModel(string graphName = "mlp")
    {
        var graph = new OnnxGraphBuilder(graphName);
        var current = graph.AddInput(InputName, OnnxDataType.Float, BatchDimension, InputSize);
        for (var index = 0; index < Layers.Count; index++)
        {
            var layer = Layers[index];
            var weights = graph.AddInitializer(
                OnnxTensor.FromFloats($"layer{index}_weight", [layer.InputSize, layer.OutputSize], layer.Weights.AsSpan()));
            var bias = graph.AddInitializer(OnnxTensor.FromFloats($"layer{index}_bias", [layer.OutputSize], layer.Bias.AsSpan()));
            current = graph.AddNode("MatMul", [current, weights], $"layer{index}_matmul");
            current = graph.AddNode("Add", [current, bias], $"layer{index}_linear");
            if (layer.AppliesRelu)
            {
                current = graph.AddNode("Relu", [current], $"layer{index}_relu");
            }
        }

        graph.AddNode("Softmax", [current], OutputName, OnnxAttribute.Int("axis", 1));
        graph.AddOutput(OutputName, OnnxDataType.Float, BatchDimension, OutputSize);
        return new OnnxModel(graph.Build())
        {
            DocString = Describe(),
            Metadata = [new("architecture", Architecture), new("seed", Seed.ToString(CultureInfo.InvariantCulture))],
        };
    }

    public string Describe() => string.Create(
        CultureInfo.InvariantCulture,
        $"Synthetic MLP {Architecture} (Relu, Softmax) with seeded random weights (seed {Seed}, {ParameterCount} parameters)");

    public override string ToString() => $"Mlp({Architecture}, seed {Seed})";
}

using Carml.Orleans.Onnx.Synthetic;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Carml.Orleans.Onnx.Tests;

public sealed class MlpModelFactoryTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    public void Mlp_model_runs_in_onnx_runtime_and_matches_a_plain_csharp_forward_pass(int batchSize)
    {
        var mlp = MlpModelFactory.Create(inputSize: 16, hiddenSizes: [64, 32], outputSize: 5, seed: 42);
        using var session = OrtSessions.Load(mlp.ToOnnxModel().ToBytes());
        var inputs = Inputs(batchSize, 16);

        var output = OrtSessions.RunFloat(session, "input", inputs, [batchSize, 16], "output", out var shape);

        Assert.Equal([batchSize, 5L], shape);
        for (var row = 0; row < batchSize; row++)
        {
            var expected = ForwardPass(mlp, inputs.AsSpan(row * 16, 16));
            var libraryEvaluator = mlp.PredictProbabilities(inputs.AsSpan(row * 16, 16));
            for (var o = 0; o < 5; o++)
            {
                var actual = output[(row * 5) + o];
                Assert.True(Math.Abs(expected[o] - actual) <= 1e-5, $"row {row} output {o}: expected {expected[o]}, ONNX Runtime {actual}");
                Assert.True(Math.Abs(libraryEvaluator[o] - actual) <= 1e-5, $"row {row} output {o}: evaluator {libraryEvaluator[o]}");
            }
        }
    }

    [Fact]
    public void Mlp_model_declares_input_and_output_with_a_symbolic_batch()
    {
        var mlp = MlpModelFactory.Create(10, [20], 3, seed: 1);
        using var session = OrtSessions.Load(mlp.ToOnnxModel().ToBytes());

        var input = Assert.Single(session.InputMetadata);
        var output = Assert.Single(session.OutputMetadata);
        Assert.Equal(("input", TensorElementType.Float), (input.Key, input.Value.ElementDataType));
        Assert.Equal([-1, 10], input.Value.Dimensions);
        Assert.Equal(("output", TensorElementType.Float), (output.Key, output.Value.ElementDataType));
        Assert.Equal([-1, 3], output.Value.Dimensions);
        Assert.Equal("10-20-3", session.ModelMetadata.CustomMetadataMap["architecture"]);
    }

    [Fact]
    public void Same_seed_gives_the_same_model_and_another_seed_a_different_one()
    {
        var first = MlpModelFactory.Create(8, [16, 16], 4, seed: 7).ToOnnxModel().ToBytes();
        var again = MlpModelFactory.Create(8, [16, 16], 4, seed: 7).ToOnnxModel().ToBytes();
        var other = MlpModelFactory.Create(8, [16, 16], 4, seed: 8).ToOnnxModel().ToBytes();

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void Mlp_without_hidden_layers_is_a_softmax_over_one_linear_layer()
    {
        var mlp = MlpModelFactory.Create(4, [], 2, seed: 3);

        var layer = Assert.Single(mlp.Layers);
        Assert.False(layer.AppliesRelu);
        Assert.Equal(4 * 2 + 2, mlp.ParameterCount);
        Assert.Equal("4-2", mlp.Architecture);
    }

    [Fact]
    public void Weights_are_bounded_by_the_he_uniform_limit()
    {
        var mlp = MlpModelFactory.Create(24, [48], 6, seed: 11);

        Assert.All(mlp.Layers, layer =>
        {
            var limit = MathF.Sqrt(6f / layer.InputSize);
            Assert.All(layer.Weights, w => Assert.InRange(w, -limit, limit));
            Assert.All(layer.Bias, b => Assert.InRange(b, -0.1f, 0.1f));
        });
    }

    [Theory]
    [InlineData(0, 4)]
    [InlineData(4, 0)]
    public void Non_positive_sizes_are_rejected(int inputSize, int outputSize)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MlpModelFactory.Create(inputSize, [8], outputSize, seed: 0));
    }

    /// <summary>An independent forward pass straight from the layer weights.</summary>
    private static double[] ForwardPass(MlpModel mlp, ReadOnlySpan<float> input)
    {
        var activations = input.ToArray().Select(v => (double)v).ToArray();
        foreach (var layer in mlp.Layers)
        {
            var next = new double[layer.OutputSize];
            for (var o = 0; o < layer.OutputSize; o++)
            {
                next[o] = layer.Bias[o] + Enumerable.Range(0, layer.InputSize).Sum(i => activations[i] * layer.GetWeight(i, o));
                if (layer.AppliesRelu)
                {
                    next[o] = Math.Max(0, next[o]);
                }
            }

            activations = next;
        }

        var max = activations.Max();
        var exponentials = activations.Select(a => Math.Exp(a - max)).ToArray();
        var sum = exponentials.Sum();
        return [.. exponentials.Select(e => e / sum)];
    }

    private static float[] Inputs(int batchSize, int width) =>
        [.. Enumerable.Range(0, batchSize * width).Select(i => MathF.Sin(i * 0.37f) * 2f)];
}

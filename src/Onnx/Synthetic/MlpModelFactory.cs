using System.Runtime.InteropServices;

namespace Carml.Orleans.Onnx.Synthetic;

/// <summary>
/// Makes benchmark MLPs of any width and depth with weights drawn from a seeded generator, so the same arguments
/// always give the same model. Weights are He-uniform (±sqrt(6 / fan_in)); biases are uniform in ±0.1.
/// </summary>
public static class MlpModelFactory
{
    public static MlpModel Create(int inputSize, IReadOnlyList<int> hiddenSizes, int outputSize, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputSize);
        ArgumentNullException.ThrowIfNull(hiddenSizes);
        if (hiddenSizes.Any(size => size <= 0))
        {
            throw new ArgumentOutOfRangeException(nameof(hiddenSizes), $"Hidden layer sizes must be positive: [{string.Join(", ", hiddenSizes)}].");
        }

        var random = new SplitMix64Random(unchecked((ulong)seed));
        int[] widths = [inputSize, .. hiddenSizes, outputSize];
        var layers = new List<MlpLayer>(widths.Length - 1);
        for (var index = 0; index < widths.Length - 1; index++)
        {
            var (fanIn, fanOut) = (widths[index], widths[index + 1]);
            var limit = MathF.Sqrt(6f / fanIn);
            var weights = new float[checked(fanIn * fanOut)];
            for (var i = 0; i < weights.Length; i++)
            {
                weights[i] = random.NextSymmetric(limit);
            }

            var bias = new float[fanOut];
            for (var i = 0; i < bias.Length; i++)
            {
                bias[i] = random.NextSymmetric(0.1f);
            }

            var isHidden = index < widths.Length - 2;
            layers.Add(new MlpLayer(
                fanIn,
                fanOut,
                ImmutableCollectionsMarshal.AsImmutableArray(weights),
                ImmutableCollectionsMarshal.AsImmutableArray(bias),
                isHidden));
        }

        return new MlpModel(layers, seed);
    }
}

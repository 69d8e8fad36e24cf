namespace Carml.Orleans.Onnx;

/// <summary>The softmax function in double precision, shared by the plain-C# evaluators and the trainer.</summary>
internal static class Softmax
{
    /// <summary>Replaces logits with probabilities; subtracts the maximum first so large logits do not overflow.</summary>
    public static void InPlace(Span<double> values)
    {
        var max = double.NegativeInfinity;
        foreach (var value in values)
        {
            max = Math.Max(max, value);
        }

        var sum = 0.0;
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = Math.Exp(values[i] - max);
            sum += values[i];
        }

        for (var i = 0; i < values.Length; i++)
        {
            values[i] /= sum;
        }
    }
}

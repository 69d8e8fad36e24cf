using System.Buffers.Binary;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Preprocessing;

/// <summary>One class of a prediction: its index in the output, its label and its probability.</summary>
public sealed record Feature(int Index, string Label, double Probability);

/// <summary>Turns a classification output [batch, classes] into the top features of each row.</summary>
public static class ClassificationDecoder
{
    /// <summary>Rows within this distance of 1 that are all in [0, 1] count as probabilities already.</summary>
    public const double DistributionTolerance = 1e-3;

    public static IReadOnlyList<IReadOnlyList<Feature>> Decode(
        InferenceTensor output, ClassificationPostprocessing classification, IReadOnlyList<string> labels, int featureLimit)
    {
        if (output.Shape.Length != 2)
        {
            throw new ModelException(ModelErrorKind.FailedPrecondition,
                $"Output '{output.Name}' has shape [{string.Join(",", output.Shape)}]; classification needs [batch, classes].");
        }

        var (rows, classes) = ((int)output.Shape[0], (int)output.Shape[1]);
        var values = ToDoubles(output);
        var limit = Math.Clamp(featureLimit, 1, Math.Max(1, classes));
        var result = new IReadOnlyList<Feature>[rows];
        for (var row = 0; row < rows; row++)
        {
            var scores = values.AsSpan(row * classes, classes);
            if (classification.Softmax == SoftmaxMode.Always
                || (classification.Softmax == SoftmaxMode.Auto && !IsDistribution(scores)))
            {
                Softmax(scores);
            }

            result[row] = Top(scores, limit, labels);
        }

        return result;
    }

    public static bool IsDistribution(ReadOnlySpan<double> scores)
    {
        var sum = 0.0;
        foreach (var score in scores)
        {
            if (score is < 0 or > 1 || double.IsNaN(score))
            {
                return false;
            }

            sum += score;
        }

        return Math.Abs(sum - 1) <= DistributionTolerance;
    }

    /// <summary>Numerically stable softmax in place.</summary>
    public static void Softmax(Span<double> scores)
    {
        if (scores.IsEmpty)
        {
            return;
        }

        var max = double.NegativeInfinity;
        foreach (var score in scores)
        {
            max = Math.Max(max, score);
        }

        var sum = 0.0;
        for (var i = 0; i < scores.Length; i++)
        {
            scores[i] = Math.Exp(scores[i] - max);
            sum += scores[i];
        }

        for (var i = 0; i < scores.Length; i++)
        {
            scores[i] /= sum;
        }
    }

    private static Feature[] Top(ReadOnlySpan<double> scores, int limit, IReadOnlyList<string> labels)
    {
        var indices = new int[scores.Length];
        for (var i = 0; i < indices.Length; i++)
        {
            indices[i] = i;
        }

        var copy = scores.ToArray();
        // Highest probability first; ties keep the lower index first.
        Array.Sort(indices, (a, b) => copy[b].CompareTo(copy[a]) is var order && order != 0 ? order : a.CompareTo(b));
        var features = new Feature[limit];
        for (var i = 0; i < limit; i++)
        {
            var index = indices[i];
            features[i] = new Feature(index, index < labels.Count ? labels[index] : index.ToString(System.Globalization.CultureInfo.InvariantCulture), copy[index]);
        }

        return features;
    }

    private static double[] ToDoubles(InferenceTensor output)
    {
        switch (output.Datatype)
        {
            case TensorDatatype.FP32:
                var floats = new double[output.Data.Length / sizeof(float)];
                for (var i = 0; i < floats.Length; i++)
                {
                    floats[i] = BinaryPrimitives.ReadSingleLittleEndian(output.Data.AsSpan(i * sizeof(float)));
                }

                return floats;
            case TensorDatatype.FP64:
                var doubles = new double[output.Data.Length / sizeof(double)];
                for (var i = 0; i < doubles.Length; i++)
                {
                    doubles[i] = BinaryPrimitives.ReadDoubleLittleEndian(output.Data.AsSpan(i * sizeof(double)));
                }

                return doubles;
            default:
                throw new ModelException(ModelErrorKind.FailedPrecondition,
                    $"Output '{output.Name}' is {output.Datatype}; classification needs FP32 or FP64.");
        }
    }
}

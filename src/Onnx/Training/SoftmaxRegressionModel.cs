using System.Collections.Immutable;
using System.Globalization;

namespace Carml.Orleans.Onnx.Training;

/// <summary>
/// A trained softmax regression over raw features: <c>p = softmax(((x - mean) / std) · W + b)</c>.
/// <see cref="PredictProbabilities"/> evaluates it in plain C#; <see cref="ToOnnxModel"/> exports the same function
/// with the standardisation inside the graph, so the ONNX model takes raw measurements.
/// </summary>
public sealed class SoftmaxRegressionModel
{
    public const string InputName = "features";
    public const string ProbabilitiesOutputName = "probabilities";
    public const string LabelOutputName = "label";
    public const string BatchDimension = "batch";

    /// <param name="featureMean">Per-feature mean subtracted first.</param>
    /// <param name="featureStandardDeviation">Per-feature divisor applied after the mean; must be positive.</param>
    /// <param name="weights">Row-major [featureCount, classCount].</param>
    /// <param name="bias">Per-class bias.</param>
    public SoftmaxRegressionModel(
        IReadOnlyList<float> featureMean,
        IReadOnlyList<float> featureStandardDeviation,
        IReadOnlyList<float> weights,
        IReadOnlyList<float> bias)
    {
        ArgumentNullException.ThrowIfNull(featureMean);
        ArgumentNullException.ThrowIfNull(featureStandardDeviation);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(bias);
        FeatureCount = featureMean.Count;
        ClassCount = bias.Count;
        if (FeatureCount == 0 || ClassCount < 2)
        {
            throw new ArgumentException("A softmax regression needs at least one feature and two classes.");
        }

        if (featureStandardDeviation.Count != FeatureCount || featureStandardDeviation.Any(s => !(s > 0) || !float.IsFinite(s)))
        {
            throw new ArgumentException($"Expected {FeatureCount} positive, finite standard deviations.", nameof(featureStandardDeviation));
        }

        if (weights.Count != FeatureCount * ClassCount)
        {
            throw new ArgumentException(
                $"Expected {FeatureCount}x{ClassCount} = {FeatureCount * ClassCount} weights but got {weights.Count}.", nameof(weights));
        }

        FeatureMean = [.. featureMean];
        FeatureStandardDeviation = [.. featureStandardDeviation];
        Weights = [.. weights];
        Bias = [.. bias];
    }

    public int FeatureCount { get; }

    public int ClassCount { get; }

    public ImmutableArray<float> FeatureMean { get; }

    public ImmutableArray<float> FeatureStandardDeviation { get; }

    /// <summary>Row-major [<see cref="FeatureCount"/>, <see cref="ClassCount"/>]; see <see cref="GetWeight"/>.</summary>
    public ImmutableArray<float> Weights { get; }

    public ImmutableArray<float> Bias { get; }

    public float GetWeight(int feature, int classIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(feature);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(feature, FeatureCount);
        ArgumentOutOfRangeException.ThrowIfNegative(classIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(classIndex, ClassCount);
        return Weights[(feature * ClassCount) + classIndex];
    }

    /// <summary>Class logits for one sample of raw features.</summary>
    public double[] PredictLogits(ReadOnlySpan<float> features)
    {
        if (features.Length != FeatureCount)
        {
            throw new ArgumentException($"Expected {FeatureCount} features but got {features.Length}.", nameof(features));
        }

        var standardised = Standardise(features, FeatureMean.AsSpan(), FeatureStandardDeviation.AsSpan());
        var logits = new double[ClassCount];
        for (var c = 0; c < ClassCount; c++)
        {
            double logit = Bias[c];
            for (var j = 0; j < FeatureCount; j++)
            {
                logit += standardised[j] * Weights[(j * ClassCount) + c];
            }

            logits[c] = logit;
        }

        return logits;
    }

    /// <summary>Class probabilities for one sample of raw features; the same function the ONNX model computes.</summary>
    public float[] PredictProbabilities(ReadOnlySpan<float> features)
    {
        var values = PredictLogits(features);
        Softmax.InPlace(values);
        return [.. values.Select(p => (float)p)];
    }

    /// <summary>The most probable class (the first one on a tie, like ONNX ArgMax).</summary>
    public int PredictLabel(ReadOnlySpan<float> features) => ArgMax(PredictProbabilities(features));

    /// <summary>The fraction of samples whose predicted label matches.</summary>
    public double Accuracy(IReadOnlyList<float[]> features, IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        if (features.Count != labels.Count || features.Count == 0)
        {
            throw new ArgumentException("Accuracy needs the same, non-zero number of samples and labels.");
        }

        var correct = 0;
        for (var i = 0; i < features.Count; i++)
        {
            if (PredictLabel(features[i]) == labels[i])
            {
                correct++;
            }
        }

        return (double)correct / features.Count;
    }

    /// <summary>
    /// The model as an ONNX graph: <c>features</c> FP32 [batch, F] → Sub(mean) → Div(std) → MatMul(W) → Add(b) →
    /// Softmax(axis=1) → <c>probabilities</c> FP32 [batch, C], and ArgMax(axis=1, keepdims=0) of the probabilities →
    /// <c>label</c> INT64 [batch]. Class names, when given, are stored in the "labels" metadata entry, comma-separated.
    /// </summary>
    public OnnxModel ToOnnxModel(string graphName = "softmax_regression", IReadOnlyList<string>? classNames = null, string? docString = null)
    {
        if (classNames is not null && classNames.Count != ClassCount)
        {
            throw new ArgumentException($"Expected {ClassCount} class names but got {classNames.Count}.", nameof(classNames));
        }

        var graph = new OnnxGraphBuilder(graphName) { DocString = docString };
        var features = graph.AddInput(InputName, OnnxDataType.Float, BatchDimension, FeatureCount);
        var mean = graph.AddInitializer(OnnxTensor.FromFloats("feature_mean", [FeatureCount], FeatureMean.AsSpan()));
        var std = graph.AddInitializer(OnnxTensor.FromFloats("feature_std", [FeatureCount], FeatureStandardDeviation.AsSpan()));
        var weights = graph.AddInitializer(OnnxTensor.FromFloats("weights", [FeatureCount, ClassCount], Weights.AsSpan()));
        var bias = graph.AddInitializer(OnnxTensor.FromFloats("bias", [ClassCount], Bias.AsSpan()));

        var centred = graph.AddNode("Sub", [features, mean], "centred");
        var standardised = graph.AddNode("Div", [centred, std], "standardised");
        var product = graph.AddNode("MatMul", [standardised, weights], "weighted");
        var logits = graph.AddNode("Add", [product, bias], "logits");
        var probabilities = graph.AddNode("Softmax", [logits], ProbabilitiesOutputName, OnnxAttribute.Int("axis", 1));
        graph.AddNode("ArgMax", [probabilities], LabelOutputName, OnnxAttribute.Int("axis", 1), OnnxAttribute.Int("keepdims", 0));

        graph.AddOutput(ProbabilitiesOutputName, OnnxDataType.Float, BatchDimension, ClassCount);
        graph.AddOutput(LabelOutputName, OnnxDataType.Int64, BatchDimension);

        return new OnnxModel(graph.Build())
        {
            DocString = docString,
            Metadata = classNames is null ? [] : [new("labels", string.Join(",", classNames))],
        };
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"SoftmaxRegression({FeatureCount} features -> {ClassCount} classes)");

    /// <summary>(x - mean) / std in single precision, the way the ONNX graph's Sub and Div compute it.</summary>
    internal static float[] Standardise(ReadOnlySpan<float> features, ReadOnlySpan<float> mean, ReadOnlySpan<float> standardDeviation)
    {
        var result = new float[features.Length];
        for (var j = 0; j < features.Length; j++)
        {
            result[j] = (features[j] - mean[j]) / standardDeviation[j];
        }

        return result;
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}

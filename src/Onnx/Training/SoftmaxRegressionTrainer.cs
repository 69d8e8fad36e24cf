namespace Carml.Orleans.Onnx.Training;

/// <summary>
/// Trains multinomial logistic (softmax) regression: features are standardised with the training set's mean and
/// population standard deviation, then weights start at zero and follow full-batch gradient descent on the mean
/// cross-entropy plus an L2 penalty. There is no randomness, so the same data always gives the same model.
/// </summary>
public static class SoftmaxRegressionTrainer
{
    public static SoftmaxRegressionModel Train(
        IReadOnlyList<float[]> features,
        IReadOnlyList<int> labels,
        int classCount,
        SoftmaxRegressionTrainingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        options ??= SoftmaxRegressionTrainingOptions.Default;
        var (sampleCount, featureCount) = Validate(features, labels, classCount, options);

        var (mean, standardDeviation) = Standardisation(features, featureCount);
        var standardised = new double[sampleCount, featureCount];
        for (var i = 0; i < sampleCount; i++)
        {
            var row = SoftmaxRegressionModel.Standardise(features[i], mean, standardDeviation);
            for (var j = 0; j < featureCount; j++)
            {
                standardised[i, j] = row[j];
            }
        }

        var weights = new double[featureCount, classCount];
        var bias = new double[classCount];
        var weightGradient = new double[featureCount, classCount];
        var biasGradient = new double[classCount];
        var probabilities = new double[classCount];

        for (var epoch = 0; epoch < options.Epochs; epoch++)
        {
            Array.Clear(weightGradient);
            Array.Clear(biasGradient);
            for (var i = 0; i < sampleCount; i++)
            {
                for (var c = 0; c < classCount; c++)
                {
                    var logit = bias[c];
                    for (var j = 0; j < featureCount; j++)
                    {
                        logit += standardised[i, j] * weights[j, c];
                    }

                    probabilities[c] = logit;
                }

                Softmax.InPlace(probabilities);
                for (var c = 0; c < classCount; c++)
                {
                    // d(cross-entropy)/d(logit) = p - onehot(label)
                    var error = probabilities[c] - (labels[i] == c ? 1.0 : 0.0);
                    biasGradient[c] += error;
                    for (var j = 0; j < featureCount; j++)
                    {
                        weightGradient[j, c] += error * standardised[i, j];
                    }
                }
            }

            for (var c = 0; c < classCount; c++)
            {
                bias[c] -= options.LearningRate * biasGradient[c] / sampleCount;
                for (var j = 0; j < featureCount; j++)
                {
                    var gradient = (weightGradient[j, c] / sampleCount) + (options.L2 * weights[j, c]);
                    weights[j, c] -= options.LearningRate * gradient;
                }
            }
        }

        var flatWeights = new float[featureCount * classCount];
        for (var j = 0; j < featureCount; j++)
        {
            for (var c = 0; c < classCount; c++)
            {
                flatWeights[(j * classCount) + c] = (float)weights[j, c];
            }
        }

        return new SoftmaxRegressionModel(mean, standardDeviation, flatWeights, [.. bias.Select(b => (float)b)]);
    }

    private static (int SampleCount, int FeatureCount) Validate(
        IReadOnlyList<float[]> features, IReadOnlyList<int> labels, int classCount, SoftmaxRegressionTrainingOptions options)
    {
        if (features.Count == 0)
        {
            throw new ArgumentException("Training needs at least one sample.", nameof(features));
        }

        if (features.Count != labels.Count)
        {
            throw new ArgumentException($"Got {features.Count} feature rows but {labels.Count} labels.", nameof(labels));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(classCount, 2);
        ArgumentOutOfRangeException.ThrowIfNegative(options.Epochs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.LearningRate);
        ArgumentOutOfRangeException.ThrowIfNegative(options.L2);

        var featureCount = features[0].Length;
        if (featureCount == 0)
        {
            throw new ArgumentException("Samples need at least one feature.", nameof(features));
        }

        for (var i = 0; i < features.Count; i++)
        {
            if (features[i].Length != featureCount)
            {
                throw new ArgumentException($"Sample {i} has {features[i].Length} features; sample 0 has {featureCount}.", nameof(features));
            }

            if (labels[i] < 0 || labels[i] >= classCount)
            {
                throw new ArgumentException($"Sample {i} has label {labels[i]}, outside 0..{classCount - 1}.", nameof(labels));
            }
        }

        return (features.Count, featureCount);
    }

    /// <summary>Per-feature mean and population standard deviation (1 where a feature is constant), as floats.</summary>
    private static (float[] Mean, float[] StandardDeviation) Standardisation(IReadOnlyList<float[]> features, int featureCount)
    {
        var mean = new float[featureCount];
        var standardDeviation = new float[featureCount];
        for (var j = 0; j < featureCount; j++)
        {
            var sum = 0.0;
            foreach (var row in features)
            {
                sum += row[j];
            }

            var average = sum / features.Count;
            var squares = 0.0;
            foreach (var row in features)
            {
                squares += (row[j] - average) * (row[j] - average);
            }

            var deviation = Math.Sqrt(squares / features.Count);
            mean[j] = (float)average;
            standardDeviation[j] = deviation > 1e-12 ? (float)deviation : 1f;
        }

        return (mean, standardDeviation);
    }
}

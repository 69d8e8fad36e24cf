using System.Diagnostics;
using System.Globalization;
using Carml.Orleans.Onnx.Manifests;
using Carml.Orleans.Onnx.Training;

namespace Carml.Orleans.Onnx.Iris;

/// <summary>
/// The server's built-in sample model: softmax regression trained on Fisher's Iris data and exported to ONNX.
/// One call loads the CSV, splits it (120 train / 30 test), trains, evaluates and serializes.
/// </summary>
public static class IrisSampleModel
{
    public const string ModelName = "iris";
    public const string ModelFileName = "iris.onnx";
    public const string ManifestFileName = "iris.yaml";
    public const string DataLicense = "CC-BY-4.0";

    public static TrainedIrisModel Build(string csvPath, SoftmaxRegressionTrainingOptions? options = null) =>
        Build(IrisDataset.Load(csvPath), options);

    public static TrainedIrisModel Build(IrisDataset dataset, SoftmaxRegressionTrainingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var stopwatch = Stopwatch.StartNew();
        var split = dataset.SplitStratified();
        var missing = IrisDataset.SpeciesNames.Where((_, index) => split.Train.All(s => s.SpeciesIndex != index)).ToList();
        if (missing.Count > 0 || split.Test.Count == 0)
        {
            throw new InvalidDataException(
                $"The Iris data needs every species in the training set and at least 5 rows of one species for a test set; " +
                $"missing from training: {(missing.Count == 0 ? "none" : string.Join(", ", missing))}, test rows: {split.Test.Count}.");
        }

        var trainFeatures = split.Train.Select(s => s.Features).ToList();
        var trainLabels = split.Train.Select(s => s.SpeciesIndex).ToList();
        var model = SoftmaxRegressionTrainer.Train(trainFeatures, trainLabels, IrisDataset.SpeciesNames.Count, options);
        var trainAccuracy = model.Accuracy(trainFeatures, trainLabels);
        var testAccuracy = model.Accuracy([.. split.Test.Select(s => s.Features)], [.. split.Test.Select(s => s.SpeciesIndex)]);

        var description = Describe(testAccuracy, split.Test.Count);
        var onnx = model.ToOnnxModel("iris_softmax_regression", IrisDataset.SpeciesNames, description).ToBytes();
        stopwatch.Stop();
        return new TrainedIrisModel(
            onnx, model, IrisDataset.SpeciesNames, trainAccuracy, testAccuracy, split.Train.Count, split.Test.Count, stopwatch.Elapsed);
    }

    internal static string Describe(double testAccuracy, int testCount) => string.Create(
        CultureInfo.InvariantCulture,
        $"Softmax regression on Fisher's Iris data (test accuracy {testAccuracy:0.000} on {testCount} held-out rows)");
}

/// <summary>The result of <see cref="IrisSampleModel.Build(string, SoftmaxRegressionTrainingOptions?)"/>.</summary>
/// <param name="OnnxBytes">The serialized <c>iris.onnx</c>.</param>
/// <param name="Model">The trained parameters and a plain-C# evaluator of the same function.</param>
/// <param name="ClassNames">Label index to species name.</param>
public sealed record TrainedIrisModel(
    byte[] OnnxBytes,
    SoftmaxRegressionModel Model,
    IReadOnlyList<string> ClassNames,
    double TrainAccuracy,
    double TestAccuracy,
    int TrainCount,
    int TestCount,
    TimeSpan BuildTime)
{
    /// <summary>The manifest describing <see cref="OnnxBytes"/> stored as <paramref name="modelFileName"/> next to it.</summary>
    public GeneratedModelManifest CreateManifest(string modelFileName = IrisSampleModel.ModelFileName, string version = "1") => new()
    {
        Name = IrisSampleModel.ModelName,
        Version = version,
        Description = IrisSampleModel.Describe(TestAccuracy, TestCount),
        License = IrisSampleModel.DataLicense,
        MaxBatchSize = 256,
        Inputs = [new ManifestTensor(SoftmaxRegressionModel.InputName, "FP32", [-1, Model.FeatureCount])],
        Outputs =
        [
            new ManifestTensor(SoftmaxRegressionModel.ProbabilitiesOutputName, "FP32", [-1, Model.ClassCount]),
            new ManifestTensor(SoftmaxRegressionModel.LabelOutputName, "INT64", [-1]),
        ],
        Labels = ClassNames,
        SourcePath = modelFileName,
    };
}

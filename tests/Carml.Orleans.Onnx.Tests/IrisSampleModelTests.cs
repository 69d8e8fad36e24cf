using Carml.Orleans.Onnx.Iris;
using Carml.Orleans.Onnx.Training;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Carml.Orleans.Onnx.Tests;

public sealed class IrisSampleModelTests
{
    private static readonly Lazy<TrainedIrisModel> Trained = new(() => IrisSampleModel.Build(RepositoryPaths.IrisCsv));

    [Fact]
    public void Written_iris_model_loads_in_onnx_runtime_with_the_declared_signature()
    {
        using var session = OrtSessions.Load(Trained.Value.OnnxBytes);

        var input = Assert.Single(session.InputMetadata);
        Assert.Equal("features", input.Key);
        Assert.Equal(TensorElementType.Float, input.Value.ElementDataType);
        Assert.Equal([-1, 4], input.Value.Dimensions);
        Assert.Equal("batch", input.Value.SymbolicDimensions[0]);

        Assert.Equal(["probabilities", "label"], session.OutputMetadata.Keys);
        Assert.Equal(TensorElementType.Float, session.OutputMetadata["probabilities"].ElementDataType);
        Assert.Equal([-1, 3], session.OutputMetadata["probabilities"].Dimensions);
        Assert.Equal(TensorElementType.Int64, session.OutputMetadata["label"].ElementDataType);
        Assert.Equal([-1], session.OutputMetadata["label"].Dimensions);
        Assert.Equal("setosa,versicolor,virginica", session.ModelMetadata.CustomMetadataMap["labels"]);
    }

    [Fact]
    public void Onnx_runtime_outputs_match_the_plain_csharp_evaluator_for_all_150_rows()
    {
        var trained = Trained.Value;
        var samples = IrisDataset.Load(RepositoryPaths.IrisCsv).Samples;
        var batch = samples.SelectMany(s => s.Features).ToArray();
        using var session = OrtSessions.Load(trained.OnnxBytes);
        using var input = OrtValue.CreateTensorValueFromMemory(batch, [samples.Count, 4]);

        var outputs = OrtSessions.Run(
            session,
            new Dictionary<string, OrtValue> { ["features"] = input },
            "probabilities", "label");
        var probabilities = (float[])outputs["probabilities"];
        var labels = (long[])outputs["label"];

        Assert.Equal(samples.Count * 3, probabilities.Length);
        Assert.Equal(samples.Count, labels.Length);
        for (var row = 0; row < samples.Count; row++)
        {
            var expected = trained.Model.PredictProbabilities(samples[row].Features);
            var actual = probabilities.AsSpan(row * 3, 3).ToArray();
            for (var c = 0; c < 3; c++)
            {
                Assert.True(
                    Math.Abs(expected[c] - actual[c]) <= 1e-5,
                    $"row {row} class {c}: evaluator {expected[c]} vs ONNX Runtime {actual[c]}");
            }

            Assert.Equal(ArgMax(actual), labels[row]);
            Assert.Equal(trained.Model.PredictLabel(samples[row].Features), labels[row]);
        }
    }

    [Fact]
    public void Held_out_accuracy_is_at_least_ninety_percent()
    {
        var trained = Trained.Value;

        Assert.Equal(120, trained.TrainCount);
        Assert.Equal(30, trained.TestCount);
        Assert.True(trained.TestAccuracy >= 0.9, $"test accuracy {trained.TestAccuracy}");
        Assert.True(trained.TrainAccuracy >= 0.9, $"train accuracy {trained.TrainAccuracy}");
    }

    [Fact]
    public void Training_is_deterministic_down_to_the_onnx_bytes()
    {
        var again = IrisSampleModel.Build(RepositoryPaths.IrisCsv);

        Assert.Equal(Trained.Value.OnnxBytes, again.OnnxBytes);
        Assert.Equal(Trained.Value.Model.Weights, again.Model.Weights);
    }

    [Fact]
    public void Training_takes_well_under_a_second()
    {
        _ = Trained.Value;

        var rebuilt = IrisSampleModel.Build(RepositoryPaths.IrisCsv);

        Assert.True(rebuilt.BuildTime < TimeSpan.FromSeconds(1), $"took {rebuilt.BuildTime}");
    }

    [Fact]
    public void Model_exposes_its_parameters_with_the_standardisation_from_the_training_set()
    {
        var model = Trained.Value.Model;
        var train = IrisDataset.Load(RepositoryPaths.IrisCsv).SplitStratified().Train;

        Assert.Equal(4, model.FeatureCount);
        Assert.Equal(3, model.ClassCount);
        Assert.Equal(12, model.Weights.Length);
        Assert.Equal(3, model.Bias.Length);
        Assert.Equal(train.Average(s => s.SepalLength), model.FeatureMean[0], precision: 5);
        Assert.Equal(train.Average(s => s.PetalWidth), model.FeatureMean[3], precision: 5);
        Assert.All(model.FeatureStandardDeviation, std => Assert.True(std > 0));
        Assert.Equal(model.Weights[(2 * 3) + 1], model.GetWeight(2, 1));
    }

    [Fact]
    public void Evaluator_classifies_textbook_examples_of_each_species()
    {
        var model = Trained.Value.Model;

        Assert.Equal(0, model.PredictLabel([5.0f, 3.4f, 1.5f, 0.2f]));
        Assert.Equal(1, model.PredictLabel([5.9f, 2.8f, 4.3f, 1.3f]));
        Assert.Equal(2, model.PredictLabel([6.8f, 3.1f, 5.9f, 2.3f]));
        Assert.Equal(1.0, model.PredictProbabilities([5.0f, 3.4f, 1.5f, 0.2f]).Sum(), precision: 5);
    }

    [Fact]
    public void Iris_manifest_is_written_in_the_server_layout()
    {
        var trained = Trained.Value;
        var accuracy = trained.TestAccuracy.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);

        var yaml = trained.CreateManifest().ToYaml();

        Assert.Equal(
            $$"""
            name: iris
            version: "1"
            framework: onnxruntime
            description: Softmax regression on Fisher's Iris data (test accuracy {{accuracy}} on 30 held-out rows)
            license: CC-BY-4.0
            max_batch_size: 256
            inputs:
              - name: features
                datatype: FP32
                shape: [-1, 4]
            outputs:
              - name: probabilities
                datatype: FP32
                shape: [-1, 3]
              - name: label
                datatype: INT64
                shape: [-1]
            labels: [setosa, versicolor, virginica]
            source:
              path: iris.onnx

            """.ReplaceLineEndings("\n"),
            yaml.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Trainer_rejects_labels_outside_the_class_range()
    {
        Assert.Throws<ArgumentException>(() => SoftmaxRegressionTrainer.Train([[1f], [2f]], [0, 3], classCount: 2));
    }

    private static long ArgMax(float[] values)
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

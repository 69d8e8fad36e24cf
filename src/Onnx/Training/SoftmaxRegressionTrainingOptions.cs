namespace Carml.Orleans.Onnx.Training;

/// <summary>Full-batch gradient descent settings for <see cref="SoftmaxRegressionTrainer"/>.</summary>
public sealed record SoftmaxRegressionTrainingOptions
{
    public static SoftmaxRegressionTrainingOptions Default { get; } = new();

    public int Epochs { get; init; } = 2000;

    public double LearningRate { get; init; } = 0.5;

    /// <summary>L2 penalty on the weights (not the bias), added to the mean cross-entropy as (L2 / 2) * |W|².</summary>
    public double L2 { get; init; } = 1e-3;
}

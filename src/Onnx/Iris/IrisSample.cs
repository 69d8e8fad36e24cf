namespace Carml.Orleans.Onnx.Iris;

/// <summary>One flower: four measurements in centimetres and its species (an index into <see cref="IrisDataset.SpeciesNames"/>).</summary>
public sealed record IrisSample(
    int LineNumber,
    float SepalLength,
    float SepalWidth,
    float PetalLength,
    float PetalWidth,
    int SpeciesIndex)
{
    public string Species => IrisDataset.SpeciesNames[SpeciesIndex];

    /// <summary>The measurements in CSV column order: sepal length, sepal width, petal length, petal width.</summary>
    public float[] Features => [SepalLength, SepalWidth, PetalLength, PetalWidth];
}

/// <summary>A train/test partition of the Iris samples.</summary>
public sealed record IrisSplit(IReadOnlyList<IrisSample> Train, IReadOnlyList<IrisSample> Test);

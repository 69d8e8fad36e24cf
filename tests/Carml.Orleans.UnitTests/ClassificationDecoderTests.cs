using System.Runtime.InteropServices;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Preprocessing;

namespace Carml.Orleans.Tests;

public sealed class ClassificationDecoderTests
{
    private static InferenceTensor Scores(int rows, params float[] values) =>
        new("scores", TensorDatatype.FP32, [rows, values.Length / rows], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    [Fact]
    public void Probabilities_are_kept_and_sorted_highest_first_with_labels()
    {
        var rows = ClassificationDecoder.Decode(Scores(1, 0.1f, 0.7f, 0.2f), new ClassificationPostprocessing(), ["cat", "dog", "fox"], 5);

        var features = Assert.Single(rows);
        Assert.Equal(["dog", "fox", "cat"], features.Select(f => f.Label));
        Assert.Equal([1, 2, 0], features.Select(f => f.Index));
        Assert.Equal(0.7, features[0].Probability, 5);
    }

    [Fact]
    public void Logits_get_a_softmax_in_auto_mode_and_not_in_never_mode()
    {
        var auto = ClassificationDecoder.Decode(Scores(1, 2f, 0f), new ClassificationPostprocessing(), [], 2)[0];
        var never = ClassificationDecoder.Decode(Scores(1, 2f, 0f), new ClassificationPostprocessing { Softmax = SoftmaxMode.Never }, [], 2)[0];

        Assert.Equal(Math.Exp(2) / (Math.Exp(2) + 1), auto[0].Probability, 6);
        Assert.Equal(2.0, never[0].Probability, 6);
        Assert.Equal("0", auto[0].Label); // no labels: the index
    }

    [Fact]
    public void Feature_limit_keeps_the_top_k_of_each_row()
    {
        var rows = ClassificationDecoder.Decode(Scores(2, 0.5f, 0.3f, 0.2f, 0.1f, 0.1f, 0.8f), new ClassificationPostprocessing(), ["a", "b", "c"], 1);

        Assert.Equal(["a"], rows[0].Select(f => f.Label));
        Assert.Equal(["c"], rows[1].Select(f => f.Label));
    }
}

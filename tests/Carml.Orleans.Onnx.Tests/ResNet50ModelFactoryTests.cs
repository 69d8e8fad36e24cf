using Carml.Orleans.Onnx.Synthetic;

namespace Carml.Orleans.Onnx.Tests;

public sealed class ResNet50ModelFactoryTests
{
    [Fact]
    public void The_resnet50_shaped_graph_loads_in_onnx_runtime_and_maps_an_image_to_1000_finite_logits()
    {
        var model = ResNet50ModelFactory.Create(seed: 3);
        var bytes = model.ToBytes();

        // 25.6 M FP32 parameters, as the real network.
        Assert.InRange(bytes.Length, 100_000_000, 105_000_000);
        Assert.Equal(53, model.Graph.Nodes.Count(n => n.OpType == "Conv"));
        using var session = OrtSessions.Load(bytes);
        var image = new float[3 * 224 * 224];
        for (var i = 0; i < image.Length; i++)
        {
            image[i] = (i % 255) / 255f;
        }

        var logits = OrtSessions.RunFloat(session, "input", image, [1, 3, 224, 224], "output", out var shape);

        Assert.Equal([1L, 1000L], shape);
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
        Assert.True(logits.Distinct().Count() > 900, "the logits should differ between classes");
    }

    [Fact]
    public void The_same_seed_gives_the_same_bytes()
    {
        Assert.Equal(ResNet50ModelFactory.Create(seed: 1).ToBytes().AsSpan(0, 1 << 20).ToArray(), ResNet50ModelFactory.Create(seed: 1).ToBytes().AsSpan(0, 1 << 20).ToArray());
    }
}

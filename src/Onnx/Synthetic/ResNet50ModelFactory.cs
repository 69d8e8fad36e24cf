using System.Globalization;

namespace Carml.Orleans.Onnx.Synthetic;

/// <summary>
/// A ResNet-50-shaped graph (He et al. 2015, v1.5: the stride sits on the 3×3 convolution) with seeded random weights:
/// the same layers, shapes and multiply-adds as the real network (about 4.1 GMAC per image, 25.6 M parameters), so
/// its run time compares with published ResNet-50 figures. Batch normalisation is folded into each convolution's bias,
/// as inference runtimes do. Input <c>input</c> FP32 [batch, 3, 224, 224]; output <c>output</c> FP32 [batch, 1000]
/// (logits).
/// </summary>
public static class ResNet50ModelFactory
{
    public const string InputName = "input";
    public const string OutputName = "output";
    public const int ImageSize = 224;
    public const int Classes = 1000;

    private static readonly (int Blocks, int Width, int Stride)[] Stages = [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)];

    public static OnnxModel Create(int seed, string graphName = "resnet50")
    {
        var random = new SplitMix64Random((ulong)seed);
        var graph = new OnnxGraphBuilder(graphName);
        var builder = new Builder(graph, random);
        var current = graph.AddInput(InputName, OnnxDataType.Float, "batch", 3, ImageSize, ImageSize);

        current = builder.Conv(current, 3, 64, kernel: 7, stride: 2, name: "conv1");
        current = graph.AddNode("Relu", [current], "conv1_relu");
        current = graph.AddNode(
            "MaxPool", [current], "pool1",
            OnnxAttribute.Ints("kernel_shape", 3, 3), OnnxAttribute.Ints("strides", 2, 2), OnnxAttribute.Ints("pads", 1, 1, 1, 1));

        var channels = 64;
        for (var s = 0; s < Stages.Length; s++)
        {
            var (blocks, width, stride) = Stages[s];
            for (var b = 0; b < blocks; b++)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"layer{s + 1}_{b}");
                current = builder.Bottleneck(current, channels, width, b == 0 ? stride : 1, name);
                channels = width * 4;
            }
        }

        current = graph.AddNode("GlobalAveragePool", [current], "avgpool");
        current = graph.AddNode("Flatten", [current], "flatten", OnnxAttribute.Int("axis", 1));
        var fcWeight = graph.AddInitializer(OnnxTensor.FromFloats("fc_weight", [Classes, channels], builder.Weights(Classes * channels, channels)));
        var fcBias = graph.AddInitializer(OnnxTensor.FromFloats("fc_bias", [Classes], builder.Bias(Classes)));
        graph.AddNode("Gemm", [current, fcWeight, fcBias], OutputName, OnnxAttribute.Int("transB", 1));
        graph.AddOutput(OutputName, OnnxDataType.Float, "batch", Classes);
        return new OnnxModel(graph.Build())
        {
            DocString = string.Create(CultureInfo.InvariantCulture, $"ResNet-50-shaped graph with seeded random weights (seed {seed}, {builder.Parameters} parameters)"),
            Metadata = [new("architecture", "resnet50-v1.5"), new("seed", seed.ToString(CultureInfo.InvariantCulture))],
        };
    }

    private sealed class Builder(OnnxGraphBuilder graph, SplitMix64Random random)
    {
        public long Parameters { get; private set; }

        public string Bottleneck(string input, int inChannels, int width, int stride, string name)
        {
            var x = Conv(input, inChannels, width, kernel: 1, stride: 1, name: $"{name}_conv1");
            x = graph.AddNode("Relu", [x], $"{name}_relu1");
            x = Conv(x, width, width, kernel: 3, stride: stride, name: $"{name}_conv2");
            x = graph.AddNode("Relu", [x], $"{name}_relu2");
            // The last convolution starts small (as zero-initialised batch-norm scales do) so activations stay bounded.
            x = Conv(x, width, width * 4, kernel: 1, stride: 1, name: $"{name}_conv3", scale: 0.2f);
            var shortcut = inChannels != width * 4 || stride != 1
                ? Conv(input, inChannels, width * 4, kernel: 1, stride: stride, name: $"{name}_downsample")
                : input;
            x = graph.AddNode("Add", [x, shortcut], $"{name}_add");
            return graph.AddNode("Relu", [x], $"{name}_relu3");
        }

        public string Conv(string input, int inChannels, int outChannels, int kernel, int stride, string name, float scale = 1f)
        {
            var fanIn = inChannels * kernel * kernel;
            var weight = graph.AddInitializer(OnnxTensor.FromFloats(
                $"{name}_weight", [outChannels, inChannels, kernel, kernel], Weights(outChannels * fanIn, fanIn, scale)));
            var bias = graph.AddInitializer(OnnxTensor.FromFloats($"{name}_bias", [outChannels], Bias(outChannels)));
            var pad = kernel / 2;
            return graph.AddNode(
                "Conv", [input, weight, bias], name,
                OnnxAttribute.Ints("kernel_shape", kernel, kernel),
                OnnxAttribute.Ints("strides", stride, stride),
                OnnxAttribute.Ints("pads", pad, pad, pad, pad));
        }

        /// <summary>He-uniform weights for a layer with <paramref name="fanIn"/> inputs per output.</summary>
        public float[] Weights(int count, int fanIn, float scale = 1f)
        {
            var limit = MathF.Sqrt(6f / fanIn) * scale;
            var values = new float[count];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = random.NextSymmetric(limit);
            }

            Parameters += count;
            return values;
        }

        public float[] Bias(int count)
        {
            var values = new float[count];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = random.NextSymmetric(0.01f);
            }

            Parameters += count;
            return values;
        }
    }
}

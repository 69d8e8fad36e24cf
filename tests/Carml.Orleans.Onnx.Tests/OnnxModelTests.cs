using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Carml.Orleans.Onnx.Tests;

public sealed class OnnxModelTests
{
    [Fact]
    public void Written_model_loads_in_onnx_runtime_and_computes()
    {
        var graph = new OnnxGraphBuilder("scale_and_shift") { DocString = "graph doc" };
        var x = graph.AddInput("x", OnnxDataType.Float, "batch", 3);
        var scale = graph.AddInitializer(OnnxTensor.FromFloats("scale", [3], [1f, 2f, 3f]));
        var shift = graph.AddInitializer(OnnxTensor.FromFloats("shift", [], [0.5f]));
        var scaled = graph.AddNode("Mul", [x, scale], "scaled");
        graph.AddNode("Add", [scaled, shift], "y");
        graph.AddOutput("y", OnnxDataType.Float, "batch", 3);
        var model = new OnnxModel(graph.Build())
        {
            DocString = "model doc",
            Domain = "org.carml.test",
            ModelVersion = 7,
            Metadata = [new("purpose", "test"), new("labels", "a,b,c")],
        };

        using var session = OrtSessions.Load(model.ToBytes());
        var output = OrtSessions.RunFloat(session, "x", [1f, 1f, 1f, 2f, 0f, -1f], [2, 3], "y", out var shape);

        Assert.Equal([2L, 3L], shape);
        Assert.Equal([1.5f, 2.5f, 3.5f, 2.5f, 0.5f, -2.5f], output);
        Assert.Equal(OnnxModel.DefaultProducerName, session.ModelMetadata.ProducerName);
        Assert.Equal("scale_and_shift", session.ModelMetadata.GraphName);
        Assert.Equal("model doc", session.ModelMetadata.Description);
        Assert.Equal("org.carml.test", session.ModelMetadata.Domain);
        Assert.Equal(7, session.ModelMetadata.Version);
        Assert.Equal("test", session.ModelMetadata.CustomMetadataMap["purpose"]);
        Assert.Equal("a,b,c", session.ModelMetadata.CustomMetadataMap["labels"]);
    }

    [Fact]
    public void Symbolic_dimensions_load_as_minus_one_with_their_names()
    {
        var graph = new OnnxGraphBuilder("identity");
        graph.AddInput("x", OnnxDataType.Float, "batch", 4, "width");
        graph.AddNode("Identity", ["x"], "y");
        graph.AddOutput("y", OnnxDataType.Float, "batch", 4, "width");

        using var session = OrtSessions.Load(new OnnxModel(graph.Build()).ToBytes());
        var input = session.InputMetadata["x"];

        Assert.Equal([-1, 4, -1], input.Dimensions);
        Assert.Equal(["batch", "", "width"], input.SymbolicDimensions);
        Assert.Equal(TensorElementType.Float, input.ElementDataType);
    }

    [Fact]
    public void Every_attribute_kind_and_initializer_type_round_trips_through_onnx_runtime()
    {
        var graph = new OnnxGraphBuilder("attribute_kinds");
        var x = graph.AddInput("x", OnnxDataType.Float, 2, 3);
        var transposed = graph.AddNode("Transpose", [x], "transposed", OnnxAttribute.Ints("perm", 1, 0));
        graph.AddNode("LeakyRelu", [transposed], "leaky", OnnxAttribute.Float("alpha", 0.5f));
        graph.AddNode("Constant", [], "from_tensor", OnnxAttribute.Tensor("value", OnnxTensor.FromInt64s("c", [2], [7, long.MinValue])));
        graph.AddNode("Constant", [], "from_string", OnnxAttribute.String("value_string", "héllo"));
        graph.AddNode("Constant", [], "from_floats", OnnxAttribute.Floats("value_floats", 1.5f, -2f));
        graph.AddNode("Constant", [], "from_int", OnnxAttribute.Int("value_int", -3));
        var doubles = graph.AddInitializer(OnnxTensor.FromDoubles("doubles", [2], [Math.PI, -1e300]));
        var ints = graph.AddInitializer(OnnxTensor.FromInt32s("ints", [3], [int.MinValue, -1, int.MaxValue]));
        graph.AddNode("Identity", [doubles], "doubles_out");
        graph.AddNode("Identity", [ints], "ints_out");
        graph.AddOutput("leaky", OnnxDataType.Float, 3, 2);
        graph.AddOutput("from_tensor", OnnxDataType.Int64, 2);
        graph.AddOutput("from_string", OnnxDataType.String);
        graph.AddOutput("from_floats", OnnxDataType.Float, 2);
        graph.AddOutput("from_int", OnnxDataType.Int64);
        graph.AddOutput("doubles_out", OnnxDataType.Double, 2);
        graph.AddOutput("ints_out", OnnxDataType.Int32, 3);

        using var session = OrtSessions.Load(new OnnxModel(graph.Build()).ToBytes());
        using var input = OrtValue.CreateTensorValueFromMemory(new[] { 1f, -2f, 3f, -4f, 5f, -6f }, [2, 3]);
        var outputs = OrtSessions.Run(
            session,
            new Dictionary<string, OrtValue> { ["x"] = input },
            "leaky", "from_tensor", "from_string", "from_floats", "from_int", "doubles_out", "ints_out");

        Assert.Equal(new[] { 1f, -2f, -1f, 5f, 3f, -3f }, (float[])outputs["leaky"]);
        Assert.Equal(new[] { 7L, long.MinValue }, (long[])outputs["from_tensor"]);
        Assert.Equal(new[] { "héllo" }, (string[])outputs["from_string"]);
        Assert.Equal(new[] { 1.5f, -2f }, (float[])outputs["from_floats"]);
        Assert.Equal(new[] { -3L }, (long[])outputs["from_int"]);
        Assert.Equal(new[] { Math.PI, -1e300 }, (double[])outputs["doubles_out"]);
        Assert.Equal(new[] { int.MinValue, -1, int.MaxValue }, (int[])outputs["ints_out"]);
    }

    [Fact]
    public void Nodes_from_another_operator_set_domain_bind_to_its_opset_import()
    {
        var graph = new OnnxGraphBuilder("contrib");
        graph.AddInput("x", OnnxDataType.Float, 3);
        graph.AddNode(new OnnxNode("Gelu", ["x"], ["y"]) { Domain = "com.microsoft" });
        graph.AddOutput("y", OnnxDataType.Float, 3);
        var model = new OnnxModel(graph.Build())
        {
            OperatorSets = [new(string.Empty, OnnxModel.DefaultOpsetVersion), new("com.microsoft", 1)],
        };

        using var session = OrtSessions.Load(model.ToBytes());
        var output = OrtSessions.RunFloat(session, "x", [-1f, 0f, 1f], [3], "y", out _);

        // Gelu(x) = x * Phi(x): Phi(1) = 0.8413447
        Assert.Equal(-0.1586553f, output[0], 1e-5f);
        Assert.Equal(0f, output[1], 1e-6f);
        Assert.Equal(0.8413447f, output[2], 1e-5f);
    }

    [Fact]
    public void Serialized_model_starts_with_the_ir_version_field()
    {
        var bytes = new OnnxModel(IdentityGraph()).ToBytes();

        // Field 1 (ir_version), wire type varint, value 8.
        byte[] expected = [0x08, (byte)OnnxModel.DefaultIrVersion];
        Assert.Equal(expected, bytes[..2]);
    }

    [Fact]
    public void Serializing_the_same_model_twice_gives_the_same_bytes()
    {
        var model = new OnnxModel(IdentityGraph()) { Metadata = [new("k", "v")] };

        Assert.Equal(model.ToBytes(), model.ToBytes());
    }

    [Fact]
    public void Graph_builder_reports_reading_a_value_before_it_is_defined()
    {
        var graph = new OnnxGraphBuilder("broken");
        graph.AddInput("x", OnnxDataType.Float, 1);
        graph.AddNode("Relu", ["later"], "y");
        graph.AddNode("Identity", ["x"], "later");
        graph.AddOutput("y", OnnxDataType.Float, 1);

        var error = Assert.Throws<InvalidOperationException>(graph.Build);

        Assert.Contains("'Relu_0' (Relu) reads 'later'", error.Message);
    }

    [Fact]
    public void Graph_builder_reports_outputs_nothing_produces_and_values_written_twice()
    {
        var graph = new OnnxGraphBuilder("broken");
        graph.AddInput("x", OnnxDataType.Float, 1);
        graph.AddNode("Relu", ["x"], "x");
        graph.AddOutput("missing", OnnxDataType.Float, 1);

        var error = Assert.Throws<InvalidOperationException>(graph.Build);

        Assert.Contains("writes 'x', which is already defined", error.Message);
        Assert.Contains("output 'missing' is not produced", error.Message);
    }

    [Fact]
    public void Unnamed_nodes_are_named_after_their_operator_and_position()
    {
        var graph = new OnnxGraphBuilder("names");
        graph.AddInput("x", OnnxDataType.Float, 1);
        graph.AddNode("Relu", ["x"], "a");
        graph.AddNode(new OnnxNode("Neg", ["a"], ["b"]) { Name = "negate" });
        graph.AddNode("Abs", ["b"], "c");

        Assert.Equal(["Relu_0", "negate", "Abs_2"], graph.Nodes.Select(n => n.Name));
    }

    [Fact]
    public void Tensor_factories_reject_a_value_count_that_does_not_match_the_shape()
    {
        var error = Assert.Throws<ArgumentException>(() => OnnxTensor.FromFloats("w", [2, 3], [1f, 2f]));

        Assert.Contains("needs 6 values but got 2", error.Message);
    }

    [Fact]
    public void Tensors_store_little_endian_raw_data()
    {
        var tensor = OnnxTensor.FromInt32s("t", [2], [1, -2]);

        byte[] expected = [0x01, 0x00, 0x00, 0x00, 0xFE, 0xFF, 0xFF, 0xFF];
        Assert.Equal(expected, tensor.RawData.ToArray());
        Assert.Equal(2, tensor.ElementCount);
    }

    [Fact]
    public void Duplicate_metadata_keys_are_rejected()
    {
        var model = new OnnxModel(IdentityGraph()) { Metadata = [new("k", "1"), new("k", "2")] };

        Assert.Throws<InvalidOperationException>(() => model.ToBytes());
    }

    private static OnnxGraph IdentityGraph()
    {
        var graph = new OnnxGraphBuilder("identity");
        graph.AddInput("x", OnnxDataType.Float, "batch");
        graph.AddNode("Identity", ["x"], "y");
        graph.AddOutput("y", OnnxDataType.Float, "batch");
        return graph.Build();
    }
}

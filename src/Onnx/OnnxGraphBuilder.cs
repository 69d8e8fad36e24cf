namespace Carml.Orleans.Onnx;

/// <summary>
/// Builds an <see cref="OnnxGraph"/> step by step. Add inputs and initializers, then nodes in execution order
/// (each node may only read values defined before it), then outputs; <see cref="Build"/> checks that every value
/// read is defined exactly once.
/// </summary>
/// <example>
/// <code>
/// var graph = new OnnxGraphBuilder("doubler");
/// var x = graph.AddInput("x", OnnxDataType.Float, "batch", 4);
/// var two = graph.AddInitializer(OnnxTensor.FromFloats("two", [], [2f]));
/// graph.AddNode("Mul", [x, two], "y");
/// graph.AddOutput("y", OnnxDataType.Float, "batch", 4);
/// byte[] bytes = new OnnxModel(graph.Build()).ToBytes();
/// </code>
/// </example>
public sealed class OnnxGraphBuilder
{
    private readonly List<OnnxValueInfo> _inputs = [];
    private readonly List<OnnxValueInfo> _outputs = [];
    private readonly List<OnnxTensor> _initializers = [];
    private readonly List<OnnxNode> _nodes = [];

    public OnnxGraphBuilder(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
    }

    public string Name { get; }

    public string? DocString { get; set; }

    public IReadOnlyList<OnnxNode> Nodes => _nodes;

    /// <summary>Declares a graph input; returns its name for use as a node input.</summary>
    public string AddInput(string name, OnnxDataType elementType, params IReadOnlyList<OnnxDimension> shape) =>
        AddInput(new OnnxValueInfo(name, elementType, shape));

    public string AddInput(OnnxValueInfo input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _inputs.Add(input);
        return input.Name;
    }

    /// <summary>Declares a graph output; the value must be produced by a node, an input or an initializer.</summary>
    public string AddOutput(string name, OnnxDataType elementType, params IReadOnlyList<OnnxDimension> shape) =>
        AddOutput(new OnnxValueInfo(name, elementType, shape));

    public string AddOutput(OnnxValueInfo output)
    {
        ArgumentNullException.ThrowIfNull(output);
        _outputs.Add(output);
        return output.Name;
    }

    /// <summary>Adds a constant tensor; returns its name for use as a node input.</summary>
    public string AddInitializer(OnnxTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        _initializers.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Adds a single-output node named after its operator and position; returns the output's name.</summary>
    public string AddNode(string opType, IReadOnlyList<string> inputs, string output, params IReadOnlyList<OnnxAttribute> attributes)
    {
        AddNode(new OnnxNode(opType, inputs, [output]) { Attributes = [.. attributes] });
        return output;
    }

    /// <summary>Adds a node; when it has no name it gets one from its operator and position, e.g. "MatMul_3".</summary>
    public OnnxNode AddNode(OnnxNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.Name is null)
        {
            node = node with { Name = $"{node.OpType}_{_nodes.Count}" };
        }

        _nodes.Add(node);
        return node;
    }

    /// <summary>Checks the graph and freezes it; throws <see cref="InvalidOperationException"/> listing every problem.</summary>
    public OnnxGraph Build()
    {
        var problems = new List<string>();
        var defined = new HashSet<string>(StringComparer.Ordinal);
        var inputNames = new HashSet<string>(StringComparer.Ordinal);

        foreach (var input in _inputs)
        {
            if (!inputNames.Add(input.Name))
            {
                problems.Add($"input '{input.Name}' is declared more than once");
            }
        }

        var initializerNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var initializer in _initializers)
        {
            if (!initializerNames.Add(initializer.Name))
            {
                problems.Add($"initializer '{initializer.Name}' is added more than once");
            }
        }

        // An initializer may share its name with an input: it is then the input's default value.
        defined.UnionWith(inputNames);
        defined.UnionWith(initializerNames);

        var nodeNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in _nodes)
        {
            if (node.Name is { Length: > 0 } nodeName && !nodeNames.Add(nodeName))
            {
                problems.Add($"node name '{nodeName}' is used more than once");
            }

            foreach (var input in node.Inputs)
            {
                if (input.Length > 0 && !defined.Contains(input))
                {
                    problems.Add($"node '{node.Name}' ({node.OpType}) reads '{input}', which is not defined before it");
                }
            }

            foreach (var output in node.Outputs)
            {
                if (output.Length > 0 && !defined.Add(output))
                {
                    problems.Add($"node '{node.Name}' ({node.OpType}) writes '{output}', which is already defined");
                }
            }
        }

        var outputNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var output in _outputs)
        {
            if (!outputNames.Add(output.Name))
            {
                problems.Add($"output '{output.Name}' is declared more than once");
            }

            if (!defined.Contains(output.Name))
            {
                problems.Add($"output '{output.Name}' is not produced by any node, input or initializer");
            }
        }

        if (_outputs.Count == 0)
        {
            problems.Add("the graph has no outputs");
        }

        if (problems.Count > 0)
        {
            throw new InvalidOperationException($"ONNX graph '{Name}' is invalid: {string.Join("; ", problems)}.");
        }

        return new OnnxGraph(Name, [.. _nodes], [.. _initializers], [.. _inputs], [.. _outputs], DocString);
    }
}

namespace Carml.Orleans.Onnx;

/// <summary>
/// A validated computation graph: nodes in topological order, constant initializers, and typed inputs and
/// outputs. Build one with <see cref="OnnxGraphBuilder"/>.
/// </summary>
public sealed record OnnxGraph
{
    internal OnnxGraph(
        string name,
        IReadOnlyList<OnnxNode> nodes,
        IReadOnlyList<OnnxTensor> initializers,
        IReadOnlyList<OnnxValueInfo> inputs,
        IReadOnlyList<OnnxValueInfo> outputs,
        string? docString)
    {
        Name = name;
        Nodes = nodes;
        Initializers = initializers;
        Inputs = inputs;
        Outputs = outputs;
        DocString = docString;
    }

    public string Name { get; }

    public IReadOnlyList<OnnxNode> Nodes { get; }

    public IReadOnlyList<OnnxTensor> Initializers { get; }

    public IReadOnlyList<OnnxValueInfo> Inputs { get; }

    public IReadOnlyList<OnnxValueInfo> Outputs { get; }

    public string? DocString { get; }
}

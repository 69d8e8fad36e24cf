namespace Carml.Orleans.Onnx;

/// <summary>
/// One operator application in a graph. An empty string in <see cref="Inputs"/> marks an omitted optional input.
/// <see cref="Domain"/> is empty for the default ONNX operator set.
/// </summary>
public sealed record OnnxNode
{
    public OnnxNode(string opType, IReadOnlyList<string> inputs, IReadOnlyList<string> outputs)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(opType);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outputs);
        if (outputs.Count == 0)
        {
            throw new ArgumentException($"A {opType} node needs at least one output.", nameof(outputs));
        }

        OpType = opType;
        Inputs = [.. inputs];
        Outputs = [.. outputs];
    }

    public string OpType { get; }

    public IReadOnlyList<string> Inputs { get; }

    public IReadOnlyList<string> Outputs { get; }

    public string? Name { get; init; }

    public string Domain { get; init; } = string.Empty;

    public IReadOnlyList<OnnxAttribute> Attributes { get; init; } = [];

    public string? DocString { get; init; }

    public override string ToString() =>
        $"{Name ?? OpType}: {OpType}({string.Join(", ", Inputs)}) -> {string.Join(", ", Outputs)}";
}

namespace Carml.Orleans.Onnx;

/// <summary>A graph input or output: name, element type and shape (<c>ValueInfoProto</c> with a tensor type).</summary>
public sealed record OnnxValueInfo
{
    public OnnxValueInfo(string name, OnnxDataType elementType, IReadOnlyList<OnnxDimension> shape)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (elementType == OnnxDataType.Undefined)
        {
            throw new ArgumentException($"Value '{name}' needs an element type.", nameof(elementType));
        }

        Name = name;
        ElementType = elementType;
        Shape = [.. shape];
    }

    public string Name { get; }

    public OnnxDataType ElementType { get; }

    public IReadOnlyList<OnnxDimension> Shape { get; }

    public string? DocString { get; init; }

    public override string ToString() => $"{Name}: {ElementType}[{string.Join(", ", Shape)}]";
}

namespace Carml.Orleans.Onnx;

/// <summary>The kind of value an attribute holds; the values are <c>AttributeProto.AttributeType</c>.</summary>
public enum OnnxAttributeType
{
    Float = 1,
    Int = 2,
    String = 3,
    Tensor = 4,
    Floats = 6,
    Ints = 7,
}

/// <summary>A named operator attribute. Create one with the static factories, e.g. <c>OnnxAttribute.Int("axis", 1)</c>.</summary>
public sealed record OnnxAttribute
{
    private OnnxAttribute(string name, OnnxAttributeType type)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Type = type;
    }

    public string Name { get; }

    public OnnxAttributeType Type { get; }

    public float FloatValue { get; private init; }

    public long IntValue { get; private init; }

    public string? StringValue { get; private init; }

    public OnnxTensor? TensorValue { get; private init; }

    public IReadOnlyList<float> FloatValues { get; private init; } = [];

    public IReadOnlyList<long> IntValues { get; private init; } = [];

    public static OnnxAttribute Float(string name, float value) => new(name, OnnxAttributeType.Float) { FloatValue = value };

    public static OnnxAttribute Int(string name, long value) => new(name, OnnxAttributeType.Int) { IntValue = value };

    public static OnnxAttribute String(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(name, OnnxAttributeType.String) { StringValue = value };
    }

    public static OnnxAttribute Tensor(string name, OnnxTensor value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(name, OnnxAttributeType.Tensor) { TensorValue = value };
    }

    public static OnnxAttribute Floats(string name, params IReadOnlyList<float> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(name, OnnxAttributeType.Floats) { FloatValues = [.. values] };
    }

    public static OnnxAttribute Ints(string name, params IReadOnlyList<long> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new(name, OnnxAttributeType.Ints) { IntValues = [.. values] };
    }

    public override string ToString() => Type switch
    {
        OnnxAttributeType.Float => $"{Name}={FloatValue}",
        OnnxAttributeType.Int => $"{Name}={IntValue}",
        OnnxAttributeType.String => $"{Name}=\"{StringValue}\"",
        OnnxAttributeType.Tensor => $"{Name}={TensorValue}",
        OnnxAttributeType.Floats => $"{Name}=[{string.Join(", ", FloatValues)}]",
        _ => $"{Name}=[{string.Join(", ", IntValues)}]",
    };
}

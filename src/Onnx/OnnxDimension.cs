namespace Carml.Orleans.Onnx;

/// <summary>
/// One dimension of a declared tensor shape: a fixed size (<c>dim_value</c>) or a named symbolic size
/// (<c>dim_param</c>, e.g. "batch"). Converts implicitly from <see cref="long"/> and <see cref="string"/>, so a
/// shape can be written as <c>["batch", 4]</c>. The default value is an unknown, unnamed dimension.
/// </summary>
public readonly record struct OnnxDimension
{
    private OnnxDimension(long? value, string? parameter)
    {
        Value = value;
        Parameter = parameter;
    }

    /// <summary>The fixed size, or null for a symbolic or unknown dimension.</summary>
    public long? Value { get; }

    /// <summary>The symbolic name, or null for a fixed or unknown dimension.</summary>
    public string? Parameter { get; }

    public bool IsSymbolic => Parameter is not null;

    public static OnnxDimension Fixed(long value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        return new OnnxDimension(value, null);
    }

    public static OnnxDimension Symbolic(string parameter)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(parameter);
        return new OnnxDimension(null, parameter);
    }

    public static implicit operator OnnxDimension(long value) => Fixed(value);

    public static implicit operator OnnxDimension(string parameter) => Symbolic(parameter);

    /// <summary>The size as a manifest or ONNX Runtime would report it: the fixed value, or -1 when not fixed.</summary>
    public long ToManifestSize() => Value ?? -1;

    public override string ToString() => Value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? Parameter ?? "?";
}

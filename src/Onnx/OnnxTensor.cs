using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Carml.Orleans.Onnx;

/// <summary>
/// A named constant tensor (a graph initializer or a tensor attribute), stored as little-endian
/// <c>raw_data</c> in row-major order.
/// </summary>
public sealed class OnnxTensor
{
    private OnnxTensor(string name, OnnxDataType elementType, long[] dimensions, ReadOnlyMemory<byte> rawData)
    {
        Name = name;
        ElementType = elementType;
        Dimensions = dimensions;
        RawData = rawData;
    }

    public string Name { get; }

    public OnnxDataType ElementType { get; }

    /// <summary>The shape; empty for a scalar.</summary>
    public IReadOnlyList<long> Dimensions { get; }

    /// <summary>Elements as fixed-width little-endian bytes, row-major.</summary>
    public ReadOnlyMemory<byte> RawData { get; }

    public long ElementCount => RawData.Length / ElementType.ElementSize();

    public static OnnxTensor FromFloats(string name, IReadOnlyList<long> dimensions, ReadOnlySpan<float> values) =>
        Create(name, OnnxDataType.Float, dimensions, values, static (span, value) => BinaryPrimitives.WriteSingleLittleEndian(span, value));

    public static OnnxTensor FromDoubles(string name, IReadOnlyList<long> dimensions, ReadOnlySpan<double> values) =>
        Create(name, OnnxDataType.Double, dimensions, values, static (span, value) => BinaryPrimitives.WriteDoubleLittleEndian(span, value));

    public static OnnxTensor FromInt32s(string name, IReadOnlyList<long> dimensions, ReadOnlySpan<int> values) =>
        Create(name, OnnxDataType.Int32, dimensions, values, static (span, value) => BinaryPrimitives.WriteInt32LittleEndian(span, value));

    public static OnnxTensor FromInt64s(string name, IReadOnlyList<long> dimensions, ReadOnlySpan<long> values) =>
        Create(name, OnnxDataType.Int64, dimensions, values, static (span, value) => BinaryPrimitives.WriteInt64LittleEndian(span, value));

    /// <summary>A tensor of any fixed-size type from bytes already in little-endian row-major layout.</summary>
    public static OnnxTensor FromRawData(string name, OnnxDataType elementType, IReadOnlyList<long> dimensions, ReadOnlyMemory<byte> rawData)
    {
        var elementSize = elementType.ElementSize();
        if (elementSize == 0)
        {
            throw new ArgumentException($"Tensor '{name}': {elementType} has no fixed element size and cannot use raw_data.", nameof(elementType));
        }

        var dims = ValidateShape(name, dimensions);
        var expectedBytes = checked(ElementCountOf(dims) * elementSize);
        if (rawData.Length != expectedBytes)
        {
            throw new ArgumentException(
                $"Tensor '{name}' of shape [{string.Join(", ", dims)}] needs {expectedBytes} bytes of {elementType} but got {rawData.Length}.",
                nameof(rawData));
        }

        return new OnnxTensor(name, elementType, dims, rawData);
    }

    public override string ToString() => $"{Name}: {ElementType}[{string.Join(", ", Dimensions)}]";

    private static OnnxTensor Create<T>(
        string name, OnnxDataType elementType, IReadOnlyList<long> dimensions, ReadOnlySpan<T> values, LittleEndianWriter<T> writeLittleEndian)
        where T : unmanaged
    {
        var dims = ValidateShape(name, dimensions);
        var count = ElementCountOf(dims);
        if (values.Length != count)
        {
            throw new ArgumentException(
                $"Tensor '{name}' of shape [{string.Join(", ", dims)}] needs {count} values but got {values.Length}.",
                nameof(values));
        }

        byte[] bytes;
        if (BitConverter.IsLittleEndian)
        {
            bytes = MemoryMarshal.AsBytes(values).ToArray();
        }
        else
        {
            var size = elementType.ElementSize();
            bytes = new byte[checked(values.Length * size)];
            for (var i = 0; i < values.Length; i++)
            {
                writeLittleEndian(bytes.AsSpan(i * size, size), values[i]);
            }
        }

        return new OnnxTensor(name, elementType, dims, bytes);
    }

    private static long[] ValidateShape(string name, IReadOnlyList<long> dimensions)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(dimensions);
        var dims = dimensions.ToArray();
        if (dims.Any(d => d < 0))
        {
            throw new ArgumentException($"Tensor '{name}' has a negative dimension: [{string.Join(", ", dims)}].", nameof(dimensions));
        }

        return dims;
    }

    private static int ElementCountOf(long[] dims)
    {
        long count = 1;
        foreach (var dim in dims)
        {
            count = checked(count * dim);
        }

        return checked((int)count);
    }

    private delegate void LittleEndianWriter<in T>(Span<byte> destination, T value);
}

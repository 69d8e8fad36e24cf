using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>KServe v2 names and element sizes of <see cref="TensorDatatype"/>.</summary>
public static class TensorDatatypes
{
    private static readonly Dictionary<string, TensorDatatype> ByName = new(StringComparer.Ordinal)
    {
        ["BOOL"] = TensorDatatype.Bool,
        ["UINT8"] = TensorDatatype.UInt8,
        ["UINT16"] = TensorDatatype.UInt16,
        ["UINT32"] = TensorDatatype.UInt32,
        ["UINT64"] = TensorDatatype.UInt64,
        ["INT8"] = TensorDatatype.Int8,
        ["INT16"] = TensorDatatype.Int16,
        ["INT32"] = TensorDatatype.Int32,
        ["INT64"] = TensorDatatype.Int64,
        ["FP16"] = TensorDatatype.FP16,
        ["FP32"] = TensorDatatype.FP32,
        ["FP64"] = TensorDatatype.FP64,
        ["BYTES"] = TensorDatatype.Bytes,
    };

    public static IEnumerable<string> Names => ByName.Keys;

    public static bool TryParse(string? name, out TensorDatatype datatype) =>
        ByName.TryGetValue(name ?? string.Empty, out datatype);

    public static string ToName(this TensorDatatype datatype) => datatype switch
    {
        TensorDatatype.Bool => "BOOL",
        TensorDatatype.UInt8 => "UINT8",
        TensorDatatype.UInt16 => "UINT16",
        TensorDatatype.UInt32 => "UINT32",
        TensorDatatype.UInt64 => "UINT64",
        TensorDatatype.Int8 => "INT8",
        TensorDatatype.Int16 => "INT16",
        TensorDatatype.Int32 => "INT32",
        TensorDatatype.Int64 => "INT64",
        TensorDatatype.FP16 => "FP16",
        TensorDatatype.FP32 => "FP32",
        TensorDatatype.FP64 => "FP64",
        TensorDatatype.Bytes => "BYTES",
        _ => throw new ArgumentOutOfRangeException(nameof(datatype), datatype, "Unknown tensor datatype."),
    };

    /// <summary>Bytes per element; BYTES has no fixed size and returns 0.</summary>
    public static int ElementSize(this TensorDatatype datatype) => datatype switch
    {
        TensorDatatype.Bool or TensorDatatype.UInt8 or TensorDatatype.Int8 => 1,
        TensorDatatype.UInt16 or TensorDatatype.Int16 or TensorDatatype.FP16 => 2,
        TensorDatatype.UInt32 or TensorDatatype.Int32 or TensorDatatype.FP32 => 4,
        TensorDatatype.UInt64 or TensorDatatype.Int64 or TensorDatatype.FP64 => 8,
        TensorDatatype.Bytes => 0,
        _ => throw new ArgumentOutOfRangeException(nameof(datatype), datatype, "Unknown tensor datatype."),
    };

    /// <summary>Whether the server can run tensors of this type (all fixed-size types; BYTES not yet).</summary>
    public static bool IsSupported(this TensorDatatype datatype) => datatype != TensorDatatype.Bytes;

    /// <summary>The number of elements of a fully known shape; null on overflow or a negative dimension.</summary>
    public static long? ElementCount(IReadOnlyList<long> shape)
    {
        long count = 1;
        foreach (var dim in shape)
        {
            if (dim < 0)
            {
                return null;
            }

            try
            {
                count = checked(count * dim);
            }
            catch (OverflowException)
            {
                return null;
            }
        }

        return count;
    }

    public static string FormatShape(IReadOnlyList<long> shape) => "[" + string.Join(",", shape) + "]";
}

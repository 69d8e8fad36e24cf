namespace Carml.Orleans.Onnx;

/// <summary>ONNX tensor element types; the values are <c>TensorProto.DataType</c> from onnx.proto.</summary>
public enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    BFloat16 = 16,
}

/// <summary>Element sizes and KServe v2 datatype names of <see cref="OnnxDataType"/>.</summary>
public static class OnnxDataTypes
{
    /// <summary>Bytes per element in <c>raw_data</c>; 0 for types without a fixed size (STRING, UNDEFINED).</summary>
    public static int ElementSize(this OnnxDataType dataType) => dataType switch
    {
        OnnxDataType.Bool or OnnxDataType.UInt8 or OnnxDataType.Int8 => 1,
        OnnxDataType.UInt16 or OnnxDataType.Int16 or OnnxDataType.Float16 or OnnxDataType.BFloat16 => 2,
        OnnxDataType.UInt32 or OnnxDataType.Int32 or OnnxDataType.Float => 4,
        OnnxDataType.UInt64 or OnnxDataType.Int64 or OnnxDataType.Double => 8,
        _ => 0,
    };

    /// <summary>The KServe v2 / Open Inference Protocol datatype name used in model manifests, e.g. FP32.</summary>
    public static string ToManifestDatatype(this OnnxDataType dataType) => dataType switch
    {
        OnnxDataType.Bool => "BOOL",
        OnnxDataType.UInt8 => "UINT8",
        OnnxDataType.UInt16 => "UINT16",
        OnnxDataType.UInt32 => "UINT32",
        OnnxDataType.UInt64 => "UINT64",
        OnnxDataType.Int8 => "INT8",
        OnnxDataType.Int16 => "INT16",
        OnnxDataType.Int32 => "INT32",
        OnnxDataType.Int64 => "INT64",
        OnnxDataType.Float16 => "FP16",
        OnnxDataType.Float => "FP32",
        OnnxDataType.Double => "FP64",
        OnnxDataType.String => "BYTES",
        _ => throw new ArgumentOutOfRangeException(nameof(dataType), dataType, "No manifest datatype for this ONNX type."),
    };
}

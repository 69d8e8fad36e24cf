namespace Carml.Orleans.Interfaces;

/// <summary>Tensor element types, named as in the KServe v2 / Open Inference Protocol.</summary>
[GenerateSerializer]
[Alias("carml.TensorDatatype")]
public enum TensorDatatype
{
    Bool = 1,
    UInt8 = 2,
    UInt16 = 3,
    UInt32 = 4,
    UInt64 = 5,
    Int8 = 6,
    Int16 = 7,
    Int32 = 8,
    Int64 = 9,
    FP16 = 10,
    FP32 = 11,
    FP64 = 12,
    Bytes = 13,
}

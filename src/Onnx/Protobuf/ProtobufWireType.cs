namespace Carml.Orleans.Onnx.Protobuf;

/// <summary>The protobuf wire types this writer emits (the deprecated group types are left out).</summary>
public enum ProtobufWireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}

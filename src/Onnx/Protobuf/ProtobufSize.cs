using System.Numerics;
using System.Text;

namespace Carml.Orleans.Onnx.Protobuf;

/// <summary>Encoded sizes of protobuf values and fields, matching what <see cref="ProtobufWriter"/> writes.</summary>
public static class ProtobufSize
{
    /// <summary>Bytes taken by a base-128 varint: 1 for 0..127, up to 10 for values with the top bit set.</summary>
    public static int Varint(ulong value) => 1 + ((63 - BitOperations.LeadingZeroCount(value | 1)) / 7);

    /// <summary>Bytes taken by a field's tag (field number and wire type).</summary>
    public static int Tag(int fieldNumber)
    {
        ProtobufWriter.ValidateFieldNumber(fieldNumber);
        return Varint((ulong)fieldNumber << 3);
    }

    /// <summary>An int64 (or sign-extended int32/enum) varint field; negative values take 10 bytes.</summary>
    public static int Int64Field(int fieldNumber, long value) => Tag(fieldNumber) + Varint(unchecked((ulong)value));

    public static int UInt64Field(int fieldNumber, ulong value) => Tag(fieldNumber) + Varint(value);

    public static int Fixed32Field(int fieldNumber) => Tag(fieldNumber) + 4;

    public static int Fixed64Field(int fieldNumber) => Tag(fieldNumber) + 8;

    /// <summary>A length-delimited field carrying <paramref name="length"/> bytes.</summary>
    public static int LengthDelimitedField(int fieldNumber, int length) =>
        checked(Tag(fieldNumber) + Varint((ulong)length) + length);

    public static int StringField(int fieldNumber, string value) =>
        LengthDelimitedField(fieldNumber, Encoding.UTF8.GetByteCount(value));

    public static int MessageField<TMessage>(int fieldNumber, in TMessage message)
        where TMessage : IProtobufMessage =>
        LengthDelimitedField(fieldNumber, message.CalculateSize());

    /// <summary>The body of a packed repeated varint field (without tag and length prefix).</summary>
    public static int PackedInt64Body(ReadOnlySpan<long> values)
    {
        var size = 0;
        foreach (var value in values)
        {
            size = checked(size + Varint(unchecked((ulong)value)));
        }

        return size;
    }

    /// <summary>A packed repeated int64 field; an empty list writes nothing and takes 0 bytes.</summary>
    public static int PackedInt64Field(int fieldNumber, ReadOnlySpan<long> values) =>
        values.IsEmpty ? 0 : LengthDelimitedField(fieldNumber, PackedInt64Body(values));

    /// <summary>A packed repeated fixed32 field (float, fixed32, sfixed32) of <paramref name="count"/> elements.</summary>
    public static int PackedFixed32Field(int fieldNumber, int count) =>
        count == 0 ? 0 : LengthDelimitedField(fieldNumber, checked(count * 4));

    /// <summary>A packed repeated fixed64 field (double, fixed64, sfixed64) of <paramref name="count"/> elements.</summary>
    public static int PackedFixed64Field(int fieldNumber, int count) =>
        count == 0 ? 0 : LengthDelimitedField(fieldNumber, checked(count * 8));
}

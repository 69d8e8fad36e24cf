using System.Buffers.Binary;
using System.Text;

namespace Carml.Orleans.Onnx.Protobuf;

/// <summary>
/// Appends protobuf wire-format values to a growable buffer. Field writers put the tag first; the bare value
/// writers (<see cref="WriteVarint"/>, <see cref="WriteFixed32"/>, ...) write only the value.
/// </summary>
public sealed class ProtobufWriter
{
    /// <summary>The largest field number protobuf allows (2^29 - 1).</summary>
    public const int MaxFieldNumber = (1 << 29) - 1;

    private byte[] _buffer;
    private int _length;

    public ProtobufWriter(int initialCapacity = 256)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(initialCapacity);
        _buffer = initialCapacity == 0 ? [] : new byte[initialCapacity];
    }

    /// <summary>Bytes written so far.</summary>
    public int Length => _length;

    /// <summary>The bytes written so far; valid until the next write.</summary>
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    /// <summary>A copy of the bytes written so far.</summary>
    public byte[] ToArray() => WrittenSpan.ToArray();

    public void WriteTag(int fieldNumber, ProtobufWireType wireType)
    {
        ValidateFieldNumber(fieldNumber);
        WriteVarint(((ulong)fieldNumber << 3) | (ulong)wireType);
    }

    /// <summary>Base-128 varint, least significant group first, high bit set on all but the last byte.</summary>
    public void WriteVarint(ulong value)
    {
        var span = Reserve(ProtobufSize.Varint(value));
        var index = 0;
        while (value >= 0x80)
        {
            span[index++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[index] = (byte)value;
    }

    public void WriteFixed32(uint value) => BinaryPrimitives.WriteUInt32LittleEndian(Reserve(4), value);

    public void WriteFixed64(ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Reserve(8), value);

    public void WriteRawBytes(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Reserve(bytes.Length));

    /// <summary>int64 as a varint; negative values are written as their 64-bit two's complement (10 bytes).</summary>
    public void WriteInt64Field(int fieldNumber, long value)
    {
        WriteTag(fieldNumber, ProtobufWireType.Varint);
        WriteVarint(unchecked((ulong)value));
    }

    /// <summary>int32 and enum fields: sign-extended to 64 bits, as protobuf requires.</summary>
    public void WriteInt32Field(int fieldNumber, int value) => WriteInt64Field(fieldNumber, value);

    public void WriteUInt64Field(int fieldNumber, ulong value)
    {
        WriteTag(fieldNumber, ProtobufWireType.Varint);
        WriteVarint(value);
    }

    public void WriteFixed32Field(int fieldNumber, uint value)
    {
        WriteTag(fieldNumber, ProtobufWireType.Fixed32);
        WriteFixed32(value);
    }

    public void WriteFixed64Field(int fieldNumber, ulong value)
    {
        WriteTag(fieldNumber, ProtobufWireType.Fixed64);
        WriteFixed64(value);
    }

    /// <summary>A float field: IEEE 754 single, fixed32 little-endian.</summary>
    public void WriteFloatField(int fieldNumber, float value) =>
        WriteFixed32Field(fieldNumber, BitConverter.SingleToUInt32Bits(value));

    /// <summary>A double field: IEEE 754 double, fixed64 little-endian.</summary>
    public void WriteDoubleField(int fieldNumber, double value) =>
        WriteFixed64Field(fieldNumber, BitConverter.DoubleToUInt64Bits(value));

    public void WriteBytesField(int fieldNumber, ReadOnlySpan<byte> value)
    {
        WriteTag(fieldNumber, ProtobufWireType.LengthDelimited);
        WriteVarint((ulong)value.Length);
        WriteRawBytes(value);
    }

    /// <summary>A string field, UTF-8 encoded.</summary>
    public void WriteStringField(int fieldNumber, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var byteCount = Encoding.UTF8.GetByteCount(value);
        WriteTag(fieldNumber, ProtobufWireType.LengthDelimited);
        WriteVarint((ulong)byteCount);
        Encoding.UTF8.GetBytes(value, Reserve(byteCount));
    }

    /// <summary>An embedded message: tag, body length, then the body written by the message itself.</summary>
    public void WriteMessageField<TMessage>(int fieldNumber, in TMessage message)
        where TMessage : IProtobufMessage
    {
        var size = message.CalculateSize();
        WriteTag(fieldNumber, ProtobufWireType.LengthDelimited);
        WriteVarint((ulong)size);
        EnsureCapacity(size);
        var start = _length;
        message.WriteTo(this);
        var written = _length - start;
        if (written != size)
        {
            throw new InvalidOperationException(
                $"{typeof(TMessage).Name} reported {size} bytes but wrote {written}; its size calculation is wrong.");
        }
    }

    /// <summary>A packed repeated int64 field; nothing is written for an empty list.</summary>
    public void WritePackedInt64Field(int fieldNumber, ReadOnlySpan<long> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        WriteTag(fieldNumber, ProtobufWireType.LengthDelimited);
        WriteVarint((ulong)ProtobufSize.PackedInt64Body(values));
        foreach (var value in values)
        {
            WriteVarint(unchecked((ulong)value));
        }
    }

    /// <summary>A packed repeated float field; nothing is written for an empty list.</summary>
    public void WritePackedFloatField(int fieldNumber, ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        WriteTag(fieldNumber, ProtobufWireType.LengthDelimited);
        WriteVarint((ulong)checked(values.Length * 4));
        var span = Reserve(values.Length * 4);
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(span[(i * 4)..], values[i]);
        }
    }

    /// <summary>A packed repeated double field; nothing is written for an empty list.</summary>
    public void WritePackedDoubleField(int fieldNumber, ReadOnlySpan<double> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        WriteTag(fieldNumber, ProtobufWireType.LengthDelimited);
        WriteVarint((ulong)checked(values.Length * 8));
        var span = Reserve(values.Length * 8);
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(span[(i * 8)..], values[i]);
        }
    }

    /// <summary>
    /// Hands over the internal buffer when it is exactly full, avoiding a copy of large models; otherwise copies.
    /// The writer must not be used afterwards.
    /// </summary>
    internal byte[] DetachBuffer()
    {
        var result = _length == _buffer.Length ? _buffer : ToArray();
        _buffer = [];
        _length = 0;
        return result;
    }

    internal static void ValidateFieldNumber(int fieldNumber)
    {
        if (fieldNumber is < 1 or > MaxFieldNumber)
        {
            throw new ArgumentOutOfRangeException(
                nameof(fieldNumber), fieldNumber, $"Protobuf field numbers run from 1 to {MaxFieldNumber}.");
        }
    }

    private Span<byte> Reserve(int count)
    {
        EnsureCapacity(count);
        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }

    private void EnsureCapacity(int additional)
    {
        var required = checked(_length + additional);
        if (required <= _buffer.Length)
        {
            return;
        }

        var grown = Math.Max(required, (int)Math.Min(Array.MaxLength, Math.Max(256L, _buffer.Length * 2L)));
        Array.Resize(ref _buffer, grown);
    }
}

using Carml.Orleans.Onnx.Protobuf;

namespace Carml.Orleans.Onnx.Tests;

public sealed class ProtobufWriterTests
{
    [Theory]
    [InlineData(0UL, new byte[] { 0x00 })]
    [InlineData(1UL, new byte[] { 0x01 })]
    [InlineData(127UL, new byte[] { 0x7F })]
    [InlineData(128UL, new byte[] { 0x80, 0x01 })]
    [InlineData(300UL, new byte[] { 0xAC, 0x02 })]
    [InlineData(16383UL, new byte[] { 0xFF, 0x7F })]
    [InlineData(16384UL, new byte[] { 0x80, 0x80, 0x01 })]
    [InlineData(long.MaxValue, new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F })]
    [InlineData(ulong.MaxValue, new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 })]
    public void Varints_are_written_seven_bits_at_a_time_least_significant_first(ulong value, byte[] expected)
    {
        var writer = new ProtobufWriter();
        writer.WriteVarint(value);

        Assert.Equal(expected, writer.ToArray());
        Assert.Equal(expected.Length, ProtobufSize.Varint(value));
    }

    [Fact]
    public void Negative_int64_is_a_ten_byte_twos_complement_varint()
    {
        var writer = new ProtobufWriter();
        writer.WriteInt64Field(1, -1);

        // tag (field 1, varint) then 0xFF x 9, 0x01
        byte[] expected = [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        Assert.Equal(expected, writer.ToArray());
        Assert.Equal(11, ProtobufSize.Int64Field(1, -1));
    }

    [Fact]
    public void Negative_int32_is_sign_extended_to_ten_bytes_like_int64()
    {
        var int32 = new ProtobufWriter();
        int32.WriteInt32Field(2, -2);
        var int64 = new ProtobufWriter();
        int64.WriteInt64Field(2, -2);

        Assert.Equal(int64.ToArray(), int32.ToArray());
        Assert.Equal(11, int32.Length);
    }

    [Fact]
    public void Long_min_value_encodes_as_ten_bytes_ending_in_one()
    {
        var writer = new ProtobufWriter();
        writer.WriteVarint(unchecked((ulong)long.MinValue));

        byte[] expected = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        Assert.Equal(expected, writer.ToArray());
    }

    [Theory]
    [InlineData(1, ProtobufWireType.Varint, new byte[] { 0x08 })]
    [InlineData(2, ProtobufWireType.LengthDelimited, new byte[] { 0x12 })]
    [InlineData(5, ProtobufWireType.Fixed32, new byte[] { 0x2D })]
    [InlineData(10, ProtobufWireType.Fixed64, new byte[] { 0x51 })]
    [InlineData(15, ProtobufWireType.Varint, new byte[] { 0x78 })]
    [InlineData(16, ProtobufWireType.Varint, new byte[] { 0x80, 0x01 })]
    [InlineData(20, ProtobufWireType.Varint, new byte[] { 0xA0, 0x01 })]
    public void Tags_combine_field_number_and_wire_type(int fieldNumber, ProtobufWireType wireType, byte[] expected)
    {
        var writer = new ProtobufWriter();
        writer.WriteTag(fieldNumber, wireType);

        Assert.Equal(expected, writer.ToArray());
        Assert.Equal(expected.Length, ProtobufSize.Tag(fieldNumber));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(ProtobufWriter.MaxFieldNumber + 1)]
    public void Field_numbers_outside_the_protobuf_range_are_rejected(int fieldNumber)
    {
        var writer = new ProtobufWriter();

        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WriteTag(fieldNumber, ProtobufWireType.Varint));
    }

    [Fact]
    public void Strings_are_length_prefixed_utf8()
    {
        var writer = new ProtobufWriter();
        writer.WriteStringField(2, "testing");
        writer.WriteStringField(3, "é");

        byte[] expected = [0x12, 0x07, .. "testing"u8, 0x1A, 0x02, 0xC3, 0xA9];
        Assert.Equal(expected, writer.ToArray());
        Assert.Equal(9, ProtobufSize.StringField(2, "testing"));
        Assert.Equal(4, ProtobufSize.StringField(3, "é"));
    }

    [Fact]
    public void Fixed_width_fields_are_little_endian()
    {
        var writer = new ProtobufWriter();
        writer.WriteFloatField(2, 1.0f);
        writer.WriteDoubleField(3, -2.0);
        writer.WriteFixed32Field(4, 0x01020304);

        byte[] expected =
        [
            0x15, 0x00, 0x00, 0x80, 0x3F,
            0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0,
            0x25, 0x04, 0x03, 0x02, 0x01,
        ];
        Assert.Equal(expected, writer.ToArray());
    }

    [Fact]
    public void Packed_int64_puts_all_varints_in_one_length_delimited_field()
    {
        var writer = new ProtobufWriter();
        writer.WritePackedInt64Field(4, [3, 270, 86942]);

        // The example from the protobuf encoding guide.
        byte[] expected = [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05];
        Assert.Equal(expected, writer.ToArray());
        Assert.Equal(8, ProtobufSize.PackedInt64Field(4, [3, 270, 86942]));
    }

    [Fact]
    public void Packed_floats_are_consecutive_fixed32_values()
    {
        var writer = new ProtobufWriter();
        writer.WritePackedFloatField(4, [1.0f, -1.0f]);

        byte[] expected = [0x22, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x80, 0xBF];
        Assert.Equal(expected, writer.ToArray());
        Assert.Equal(10, ProtobufSize.PackedFixed32Field(4, 2));
    }

    [Fact]
    public void Empty_packed_fields_write_nothing()
    {
        var writer = new ProtobufWriter();
        writer.WritePackedInt64Field(1, []);
        writer.WritePackedFloatField(2, []);
        writer.WritePackedDoubleField(3, []);

        Assert.Equal(0, writer.Length);
    }

    [Fact]
    public void Embedded_messages_are_prefixed_with_their_calculated_length()
    {
        var writer = new ProtobufWriter(initialCapacity: 1);
        writer.WriteMessageField(3, new TestMessage(150));

        // The protobuf guide's Test3 example: field 3 holding a message whose field 1 is 150.
        byte[] expected = [0x1A, 0x03, 0x08, 0x96, 0x01];
        Assert.Equal(expected, writer.ToArray());
    }

    [Fact]
    public void A_message_that_misreports_its_size_is_caught()
    {
        var writer = new ProtobufWriter();

        Assert.Throws<InvalidOperationException>(() => writer.WriteMessageField(1, new MisreportingMessage()));
    }

    [Fact]
    public void The_buffer_grows_past_its_initial_capacity()
    {
        var writer = new ProtobufWriter(initialCapacity: 0);
        var payload = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();
        writer.WriteBytesField(1, payload);

        Assert.Equal(ProtobufSize.LengthDelimitedField(1, payload.Length), writer.Length);
        Assert.Equal(payload, writer.WrittenSpan[3..].ToArray());
    }

    private readonly struct TestMessage(long a) : IProtobufMessage
    {
        public int CalculateSize() => ProtobufSize.Int64Field(1, a);

        public void WriteTo(ProtobufWriter writer) => writer.WriteInt64Field(1, a);
    }

    private readonly struct MisreportingMessage : IProtobufMessage
    {
        public int CalculateSize() => 1;

        public void WriteTo(ProtobufWriter writer) => writer.WriteInt64Field(1, 1000);
    }
}

using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.KServe;

/// <summary>
/// Converts tensor elements between their wire forms (JSON numbers and booleans, protobuf typed contents) and the raw
/// little-endian bytes that cross grain calls.
/// </summary>
public static class TensorCodec
{
    /// <summary>Reads JSON data (flat or nested arrays, row-major) into raw bytes of <paramref name="count"/> elements.</summary>
    public static byte[] FromJson(JsonElement data, TensorDatatype datatype, long count, string tensor)
    {
        if (!datatype.IsSupported())
        {
            throw ModelException.InvalidArgument($"input '{tensor}': datatype {datatype.ToName()} is not supported yet");
        }

        var found = CountLeaves(data);
        if (found != count)
        {
            throw ModelException.InvalidArgument($"input '{tensor}': {found} values in data do not match its shape ({count} expected)");
        }

        var bytes = new byte[checked(count * datatype.ElementSize())];
        var index = 0;
        Write(data, datatype, bytes, ref index, tensor);
        return bytes;
    }

    /// <summary>Writes raw bytes as a flat JSON array of numbers or booleans.</summary>
    public static void WriteJson(Utf8JsonWriter writer, TensorDatatype datatype, ReadOnlySpan<byte> bytes)
    {
        writer.WriteStartArray();
        switch (datatype)
        {
            case TensorDatatype.Bool:
                foreach (var b in bytes) writer.WriteBooleanValue(b != 0);
                break;
            case TensorDatatype.UInt8:
                foreach (var b in bytes) writer.WriteNumberValue(b);
                break;
            case TensorDatatype.Int8:
                foreach (var b in MemoryMarshal.Cast<byte, sbyte>(bytes)) writer.WriteNumberValue(b);
                break;
            case TensorDatatype.UInt16:
                foreach (var v in MemoryMarshal.Cast<byte, ushort>(bytes)) writer.WriteNumberValue(v);
                break;
            case TensorDatatype.Int16:
                foreach (var v in MemoryMarshal.Cast<byte, short>(bytes)) writer.WriteNumberValue(v);
                break;
            case TensorDatatype.UInt32:
                foreach (var v in MemoryMarshal.Cast<byte, uint>(bytes)) writer.WriteNumberValue(v);
                break;
            case TensorDatatype.Int32:
                foreach (var v in MemoryMarshal.Cast<byte, int>(bytes)) writer.WriteNumberValue(v);
                break;
            case TensorDatatype.UInt64:
                foreach (var v in MemoryMarshal.Cast<byte, ulong>(bytes)) writer.WriteNumberValue(v);
                break;
            case TensorDatatype.Int64:
                foreach (var v in MemoryMarshal.Cast<byte, long>(bytes)) writer.WriteNumberValue(v);
                break;
            case TensorDatatype.FP16:
                foreach (var v in MemoryMarshal.Cast<byte, Half>(bytes)) WriteFloat(writer, (double)v);
                break;
            case TensorDatatype.FP32:
                foreach (var v in MemoryMarshal.Cast<byte, float>(bytes)) WriteFloat(writer, v);
                break;
            case TensorDatatype.FP64:
                foreach (var v in MemoryMarshal.Cast<byte, double>(bytes)) WriteFloat(writer, v);
                break;
            default:
                throw new ModelException(ModelErrorKind.Unavailable, $"Datatype {datatype.ToName()} cannot be written as JSON.");
        }

        writer.WriteEndArray();
    }

    private static void WriteFloat(Utf8JsonWriter writer, float value)
    {
        if (float.IsFinite(value)) writer.WriteNumberValue(value);
        else writer.WriteStringValue(NonFinite(value));
    }

    private static void WriteFloat(Utf8JsonWriter writer, double value)
    {
        if (double.IsFinite(value)) writer.WriteNumberValue(value);
        else writer.WriteStringValue(NonFinite(value));
    }

    private static string NonFinite(double value) =>
        double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";

    private static long CountLeaves(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Array)
        {
            return 1;
        }

        long count = 0;
        foreach (var item in element.EnumerateArray())
        {
            count += CountLeaves(item);
        }

        return count;
    }

    private static void Write(JsonElement element, TensorDatatype datatype, byte[] bytes, ref int index, string tensor)
    {
        if (element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray())
            {
                Write(item, datatype, bytes, ref index, tensor);
            }

            return;
        }

        var span = bytes.AsSpan(index * datatype.ElementSize());
        switch (datatype)
        {
            case TensorDatatype.Bool:
                span[0] = element.ValueKind switch
                {
                    JsonValueKind.True => 1,
                    JsonValueKind.False => 0,
                    _ => throw NotA(element, "BOOL value (true or false)", index, tensor),
                };
                break;
            case TensorDatatype.UInt8:
                span[0] = (byte)Integer(element, byte.MinValue, byte.MaxValue, datatype, index, tensor);
                break;
            case TensorDatatype.Int8:
                span[0] = (byte)(sbyte)Integer(element, sbyte.MinValue, sbyte.MaxValue, datatype, index, tensor);
                break;
            case TensorDatatype.UInt16:
                BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)Integer(element, ushort.MinValue, ushort.MaxValue, datatype, index, tensor));
                break;
            case TensorDatatype.Int16:
                BinaryPrimitives.WriteInt16LittleEndian(span, (short)Integer(element, short.MinValue, short.MaxValue, datatype, index, tensor));
                break;
            case TensorDatatype.UInt32:
                BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)Integer(element, uint.MinValue, uint.MaxValue, datatype, index, tensor));
                break;
            case TensorDatatype.Int32:
                BinaryPrimitives.WriteInt32LittleEndian(span, (int)Integer(element, int.MinValue, int.MaxValue, datatype, index, tensor));
                break;
            case TensorDatatype.Int64:
                BinaryPrimitives.WriteInt64LittleEndian(span, Integer(element, long.MinValue, long.MaxValue, datatype, index, tensor));
                break;
            case TensorDatatype.UInt64:
                if (element.ValueKind != JsonValueKind.Number || !element.TryGetUInt64(out var u64))
                {
                    throw NotA(element, "UINT64 integer", index, tensor);
                }

                BinaryPrimitives.WriteUInt64LittleEndian(span, u64);
                break;
            case TensorDatatype.FP16:
                BinaryPrimitives.WriteHalfLittleEndian(span, (Half)Float(element, datatype, index, tensor));
                break;
            case TensorDatatype.FP32:
                BinaryPrimitives.WriteSingleLittleEndian(span, (float)Float(element, datatype, index, tensor));
                break;
            case TensorDatatype.FP64:
                BinaryPrimitives.WriteDoubleLittleEndian(span, Float(element, datatype, index, tensor));
                break;
            default:
                throw ModelException.InvalidArgument($"input '{tensor}': datatype {datatype.ToName()} is not supported yet");
        }

        index++;
    }

    private static long Integer(JsonElement element, long min, long max, TensorDatatype datatype, int index, string tensor)
    {
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var value) || value < min || value > max)
        {
            throw NotA(element, $"{datatype.ToName()} integer ({min} to {max})", index, tensor);
        }

        return value;
    }

    private static double Float(JsonElement element, TensorDatatype datatype, int index, string tensor)
    {
        if (element.ValueKind == JsonValueKind.Number && element.TryGetDouble(out var value))
        {
            return value;
        }

        if (element.ValueKind == JsonValueKind.String)
        {
            switch (element.GetString())
            {
                case "NaN": return double.NaN;
                case "Infinity" or "inf": return double.PositiveInfinity;
                case "-Infinity" or "-inf": return double.NegativeInfinity;
            }
        }

        throw NotA(element, $"{datatype.ToName()} number", index, tensor);
    }

    private static ModelException NotA(JsonElement element, string expected, int index, string tensor)
    {
        var text = element.GetRawText();
        if (text.Length > 40)
        {
            text = text[..40] + "…";
        }

        return ModelException.InvalidArgument($"input '{tensor}': element {index} ({text}) is not a {expected}");
    }
}

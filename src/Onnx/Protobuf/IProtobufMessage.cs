namespace Carml.Orleans.Onnx.Protobuf;

/// <summary>
/// A message that can report its encoded size before writing itself, so that an enclosing message can write the
/// length prefix first and the body straight after, without encoding into a temporary buffer.
/// </summary>
public interface IProtobufMessage
{
    /// <summary>The number of bytes <see cref="WriteTo"/> will write (the body only, no tag or length prefix).</summary>
    int CalculateSize();

    /// <summary>Writes the message's fields; must write exactly <see cref="CalculateSize"/> bytes.</summary>
    void WriteTo(ProtobufWriter writer);
}

using Carml.Orleans.Onnx.Protobuf;

namespace Carml.Orleans.Onnx;

// Encoders for the onnx.proto messages this library writes. Field numbers are those of onnx/onnx.proto (proto2).
// Fields are written in field-number order. Repeated int64 fields that onnx.proto does not declare packed
// (TensorProto.dims, AttributeProto.ints) are written unpacked, one tagged varint each, as protoc would.

internal readonly struct ModelProtoMessage(OnnxModel model) : IProtobufMessage
{
    private const int IrVersion = 1;
    private const int ProducerName = 2;
    private const int ProducerVersion = 3;
    private const int Domain = 4;
    private const int ModelVersion = 5;
    private const int DocString = 6;
    private const int Graph = 7;
    private const int OpsetImport = 8;
    private const int MetadataProps = 14;

    public int CalculateSize()
    {
        checked
        {
            var size = ProtobufSize.Int64Field(IrVersion, model.IrVersion)
                + ProtobufSize.StringField(ProducerName, model.ProducerName)
                + ProtobufSize.StringField(ProducerVersion, model.ProducerVersion)
                + OptionalString.Size(Domain, model.Domain)
                + (model.ModelVersion is { } version ? ProtobufSize.Int64Field(ModelVersion, version) : 0)
                + OptionalString.Size(DocString, model.DocString)
                + ProtobufSize.MessageField(Graph, new GraphProtoMessage(model.Graph));
            foreach (var opset in model.OperatorSets)
            {
                size += ProtobufSize.MessageField(OpsetImport, new OperatorSetIdProtoMessage(opset));
            }

            foreach (var entry in model.Metadata)
            {
                size += ProtobufSize.MessageField(MetadataProps, new StringStringEntryProtoMessage(entry));
            }

            return size;
        }
    }

    public void WriteTo(ProtobufWriter writer)
    {
        writer.WriteInt64Field(IrVersion, model.IrVersion);
        writer.WriteStringField(ProducerName, model.ProducerName);
        writer.WriteStringField(ProducerVersion, model.ProducerVersion);
        OptionalString.Write(writer, Domain, model.Domain);
        if (model.ModelVersion is { } version)
        {
            writer.WriteInt64Field(ModelVersion, version);
        }

        OptionalString.Write(writer, DocString, model.DocString);
        writer.WriteMessageField(Graph, new GraphProtoMessage(model.Graph));
        foreach (var opset in model.OperatorSets)
        {
            writer.WriteMessageField(OpsetImport, new OperatorSetIdProtoMessage(opset));
        }

        foreach (var entry in model.Metadata)
        {
            writer.WriteMessageField(MetadataProps, new StringStringEntryProtoMessage(entry));
        }
    }
}

internal readonly struct OperatorSetIdProtoMessage(OnnxOperatorSetImport opset) : IProtobufMessage
{
    private const int Domain = 1;
    private const int Version = 2;

    public int CalculateSize() =>
        OptionalString.Size(Domain, opset.Domain) + ProtobufSize.Int64Field(Version, opset.Version);

    public void WriteTo(ProtobufWriter writer)
    {
        OptionalString.Write(writer, Domain, opset.Domain);
        writer.WriteInt64Field(Version, opset.Version);
    }
}

internal readonly struct StringStringEntryProtoMessage(KeyValuePair<string, string> entry) : IProtobufMessage
{
    private const int Key = 1;
    private const int Value = 2;

    public int CalculateSize() =>
        ProtobufSize.StringField(Key, entry.Key) + ProtobufSize.StringField(Value, entry.Value ?? string.Empty);

    public void WriteTo(ProtobufWriter writer)
    {
        writer.WriteStringField(Key, entry.Key);
        writer.WriteStringField(Value, entry.Value ?? string.Empty);
    }
}

internal readonly struct GraphProtoMessage(OnnxGraph graph) : IProtobufMessage
{
    private const int Node = 1;
    private const int Name = 2;
    private const int Initializer = 5;
    private const int DocString = 10;
    private const int Input = 11;
    private const int Output = 12;

    public int CalculateSize()
    {
        checked
        {
            var size = ProtobufSize.StringField(Name, graph.Name) + OptionalString.Size(DocString, graph.DocString);
            foreach (var node in graph.Nodes)
            {
                size += ProtobufSize.MessageField(Node, new NodeProtoMessage(node));
            }

            foreach (var tensor in graph.Initializers)
            {
                size += ProtobufSize.MessageField(Initializer, new TensorProtoMessage(tensor));
            }

            foreach (var input in graph.Inputs)
            {
                size += ProtobufSize.MessageField(Input, new ValueInfoProtoMessage(input));
            }

            foreach (var output in graph.Outputs)
            {
                size += ProtobufSize.MessageField(Output, new ValueInfoProtoMessage(output));
            }

            return size;
        }
    }

    public void WriteTo(ProtobufWriter writer)
    {
        foreach (var node in graph.Nodes)
        {
            writer.WriteMessageField(Node, new NodeProtoMessage(node));
        }

        writer.WriteStringField(Name, graph.Name);
        foreach (var tensor in graph.Initializers)
        {
            writer.WriteMessageField(Initializer, new TensorProtoMessage(tensor));
        }

        OptionalString.Write(writer, DocString, graph.DocString);
        foreach (var input in graph.Inputs)
        {
            writer.WriteMessageField(Input, new ValueInfoProtoMessage(input));
        }

        foreach (var output in graph.Outputs)
        {
            writer.WriteMessageField(Output, new ValueInfoProtoMessage(output));
        }
    }
}

internal readonly struct NodeProtoMessage(OnnxNode node) : IProtobufMessage
{
    private const int Input = 1;
    private const int Output = 2;
    private const int Name = 3;
    private const int OpType = 4;
    private const int Attribute = 5;
    private const int DocString = 6;
    private const int Domain = 7;

    public int CalculateSize()
    {
        checked
        {
            var size = 0;
            foreach (var input in node.Inputs)
            {
                size += ProtobufSize.StringField(Input, input);
            }

            foreach (var output in node.Outputs)
            {
                size += ProtobufSize.StringField(Output, output);
            }

            size += OptionalString.Size(Name, node.Name) + ProtobufSize.StringField(OpType, node.OpType);
            foreach (var attribute in node.Attributes)
            {
                size += ProtobufSize.MessageField(Attribute, new AttributeProtoMessage(attribute));
            }

            return size + OptionalString.Size(DocString, node.DocString) + OptionalString.Size(Domain, node.Domain);
        }
    }

    public void WriteTo(ProtobufWriter writer)
    {
        foreach (var input in node.Inputs)
        {
            writer.WriteStringField(Input, input);
        }

        foreach (var output in node.Outputs)
        {
            writer.WriteStringField(Output, output);
        }

        OptionalString.Write(writer, Name, node.Name);
        writer.WriteStringField(OpType, node.OpType);
        foreach (var attribute in node.Attributes)
        {
            writer.WriteMessageField(Attribute, new AttributeProtoMessage(attribute));
        }

        OptionalString.Write(writer, DocString, node.DocString);
        OptionalString.Write(writer, Domain, node.Domain);
    }
}

internal readonly struct AttributeProtoMessage(OnnxAttribute attribute) : IProtobufMessage
{
    private const int Name = 1;
    private const int F = 2;
    private const int I = 3;
    private const int S = 4;
    private const int T = 5;
    private const int Floats = 7;
    private const int Ints = 8;
    private const int Type = 20;

    public int CalculateSize()
    {
        checked
        {
            var size = ProtobufSize.StringField(Name, attribute.Name) + ProtobufSize.Int64Field(Type, (long)attribute.Type);
            switch (attribute.Type)
            {
                case OnnxAttributeType.Float:
                    return size + ProtobufSize.Fixed32Field(F);
                case OnnxAttributeType.Int:
                    return size + ProtobufSize.Int64Field(I, attribute.IntValue);
                case OnnxAttributeType.String:
                    return size + ProtobufSize.StringField(S, attribute.StringValue!);
                case OnnxAttributeType.Tensor:
                    return size + ProtobufSize.MessageField(T, new TensorProtoMessage(attribute.TensorValue!));
                case OnnxAttributeType.Floats:
                    return size + (attribute.FloatValues.Count * ProtobufSize.Fixed32Field(Floats));
                default:
                    foreach (var value in attribute.IntValues)
                    {
                        size += ProtobufSize.Int64Field(Ints, value);
                    }

                    return size;
            }
        }
    }

    public void WriteTo(ProtobufWriter writer)
    {
        writer.WriteStringField(Name, attribute.Name);
        switch (attribute.Type)
        {
            case OnnxAttributeType.Float:
                writer.WriteFloatField(F, attribute.FloatValue);
                break;
            case OnnxAttributeType.Int:
                writer.WriteInt64Field(I, attribute.IntValue);
                break;
            case OnnxAttributeType.String:
                writer.WriteStringField(S, attribute.StringValue!);
                break;
            case OnnxAttributeType.Tensor:
                writer.WriteMessageField(T, new TensorProtoMessage(attribute.TensorValue!));
                break;
            case OnnxAttributeType.Floats:
                foreach (var value in attribute.FloatValues)
                {
                    writer.WriteFloatField(Floats, value);
                }

                break;
            default:
                foreach (var value in attribute.IntValues)
                {
                    writer.WriteInt64Field(Ints, value);
                }

                break;
        }

        writer.WriteInt64Field(Type, (long)attribute.Type);
    }
}

internal readonly struct TensorProtoMessage(OnnxTensor tensor) : IProtobufMessage
{
    private const int Dims = 1;
    private const int DataType = 2;
    private const int Name = 8;
    private const int RawData = 9;

    public int CalculateSize()
    {
        checked
        {
            var size = 0;
            foreach (var dim in tensor.Dimensions)
            {
                size += ProtobufSize.Int64Field(Dims, dim);
            }

            return size
                + ProtobufSize.Int64Field(DataType, (long)tensor.ElementType)
                + ProtobufSize.StringField(Name, tensor.Name)
                + ProtobufSize.LengthDelimitedField(RawData, tensor.RawData.Length);
        }
    }

    public void WriteTo(ProtobufWriter writer)
    {
        foreach (var dim in tensor.Dimensions)
        {
            writer.WriteInt64Field(Dims, dim);
        }

        writer.WriteInt32Field(DataType, (int)tensor.ElementType);
        writer.WriteStringField(Name, tensor.Name);
        writer.WriteBytesField(RawData, tensor.RawData.Span);
    }
}

internal readonly struct ValueInfoProtoMessage(OnnxValueInfo value) : IProtobufMessage
{
    private const int Name = 1;
    private const int Type = 2;
    private const int DocString = 3;

    public int CalculateSize() =>
        checked(ProtobufSize.StringField(Name, value.Name)
            + ProtobufSize.MessageField(Type, new TypeProtoMessage(value))
            + OptionalString.Size(DocString, value.DocString));

    public void WriteTo(ProtobufWriter writer)
    {
        writer.WriteStringField(Name, value.Name);
        writer.WriteMessageField(Type, new TypeProtoMessage(value));
        OptionalString.Write(writer, DocString, value.DocString);
    }
}

/// <summary>TypeProto holding only its <c>tensor_type</c> member.</summary>
internal readonly struct TypeProtoMessage(OnnxValueInfo value) : IProtobufMessage
{
    private const int TensorType = 1;

    public int CalculateSize() => ProtobufSize.MessageField(TensorType, new TensorTypeProtoMessage(value));

    public void WriteTo(ProtobufWriter writer) => writer.WriteMessageField(TensorType, new TensorTypeProtoMessage(value));
}

/// <summary>TypeProto.Tensor: element type and shape.</summary>
internal readonly struct TensorTypeProtoMessage(OnnxValueInfo value) : IProtobufMessage
{
    private const int ElemType = 1;
    private const int Shape = 2;

    public int CalculateSize() =>
        checked(ProtobufSize.Int64Field(ElemType, (long)value.ElementType)
            + ProtobufSize.MessageField(Shape, new TensorShapeProtoMessage(value.Shape)));

    public void WriteTo(ProtobufWriter writer)
    {
        writer.WriteInt32Field(ElemType, (int)value.ElementType);
        writer.WriteMessageField(Shape, new TensorShapeProtoMessage(value.Shape));
    }
}

internal readonly struct TensorShapeProtoMessage(IReadOnlyList<OnnxDimension> shape) : IProtobufMessage
{
    private const int Dim = 1;

    public int CalculateSize()
    {
        checked
        {
            var size = 0;
            foreach (var dimension in shape)
            {
                size += ProtobufSize.MessageField(Dim, new DimensionProtoMessage(dimension));
            }

            return size;
        }
    }

    public void WriteTo(ProtobufWriter writer)
    {
        foreach (var dimension in shape)
        {
            writer.WriteMessageField(Dim, new DimensionProtoMessage(dimension));
        }
    }
}

/// <summary>TensorShapeProto.Dimension: <c>dim_value</c>, <c>dim_param</c>, or neither for an unknown size.</summary>
internal readonly struct DimensionProtoMessage(OnnxDimension dimension) : IProtobufMessage
{
    private const int DimValue = 1;
    private const int DimParam = 2;

    public int CalculateSize() => dimension switch
    {
        { Value: { } value } => ProtobufSize.Int64Field(DimValue, value),
        { Parameter: { } parameter } => ProtobufSize.StringField(DimParam, parameter),
        _ => 0,
    };

    public void WriteTo(ProtobufWriter writer)
    {
        if (dimension.Value is { } value)
        {
            writer.WriteInt64Field(DimValue, value);
        }
        else if (dimension.Parameter is { } parameter)
        {
            writer.WriteStringField(DimParam, parameter);
        }
    }
}

/// <summary>Optional string fields: omitted when null or empty, as protobuf treats an absent string as empty.</summary>
internal static class OptionalString
{
    public static int Size(int fieldNumber, string? value) =>
        string.IsNullOrEmpty(value) ? 0 : ProtobufSize.StringField(fieldNumber, value);

    public static void Write(ProtobufWriter writer, int fieldNumber, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            writer.WriteStringField(fieldNumber, value);
        }
    }
}

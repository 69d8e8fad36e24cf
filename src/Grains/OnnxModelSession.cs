using System.Diagnostics;
using System.Runtime.InteropServices;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Carml.Orleans.Grains;

/// <summary>
/// An ONNX Runtime session for one model version, created once and reused for every request. Runs are thread-safe.
/// Inputs are handed to the runtime straight from the request's byte arrays (pinned, not copied); outputs are copied
/// once into byte arrays that can cross grain calls.
/// </summary>
public sealed class OnnxModelSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly ModelManifest _manifest;
    private readonly string[] _allOutputNames;
    private readonly RunOptions _runOptions = new();

    private OnnxModelSession(InferenceSession session, ModelManifest manifest, string executionProvider)
    {
        _session = session;
        _manifest = manifest;
        ExecutionProvider = executionProvider;
        _allOutputNames = manifest.Outputs.Select(o => o.Name).ToArray();
    }

    public string ExecutionProvider { get; }

    /// <summary>
    /// Opens the model file and checks it against the manifest. Throws <see cref="ModelException"/> (InvalidArgument)
    /// listing every mismatch, or when the file is not a loadable ONNX model.
    /// </summary>
    public static OnnxModelSession Open(string modelPath, ModelManifest manifest, OnnxRuntimeOptions options)
    {
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = options.InterOpThreads,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };

        InferenceSession session;
        try
        {
            session = new InferenceSession(modelPath, sessionOptions);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelException(
                ModelErrorKind.InvalidArgument,
                $"The model file is not a loadable ONNX model: {e.Message}",
                [$"model file: {e.Message}"]);
        }

        var problems = CheckSignature(session, manifest);
        if (problems.Count > 0)
        {
            session.Dispose();
            throw new ModelException(
                ModelErrorKind.InvalidArgument,
                $"The model file disagrees with the manifest: {string.Join("; ", problems)}",
                problems);
        }

        return new OnnxModelSession(session, manifest, "CPUExecutionProvider");
    }

    /// <summary>Every way the model's declared inputs and outputs differ from the manifest.</summary>
    public static IReadOnlyList<string> CheckSignature(InferenceSession session, ModelManifest manifest)
    {
        var problems = new List<string>();
        Compare("input", manifest.Inputs, session.InputMetadata, problems);
        Compare("output", manifest.Outputs, session.OutputMetadata, problems);
        foreach (var name in session.InputMetadata.Keys)
        {
            if (!manifest.Inputs.Any(i => i.Name == name))
            {
                var meta = session.InputMetadata[name];
                problems.Add($"the model file takes input '{name}' ({Describe(meta)}) which the manifest does not declare");
            }
        }

        return problems;
    }

    /// <summary>Runs the model. The request must already be validated against the manifest.</summary>
    public IReadOnlyList<InferenceTensor> Run(InferenceRequest request)
    {
        var inputs = request.Inputs;
        var names = new string[inputs.Count];
        var values = new OrtValue[inputs.Count];
        var pins = new GCHandle[inputs.Count];
        var outputNames = request.RequestedOutputs is { Count: > 0 } requested ? requested : _allOutputNames;
        try
        {
            for (var i = 0; i < inputs.Count; i++)
            {
                var tensor = inputs[i];
                names[i] = tensor.Name;
                pins[i] = GCHandle.Alloc(tensor.Data, GCHandleType.Pinned);
                values[i] = OrtValue.CreateTensorValueWithData(
                    OrtMemoryInfo.DefaultInstance,
                    ToElementType(tensor.Datatype),
                    tensor.Shape,
                    pins[i].AddrOfPinnedObject(),
                    tensor.Data.LongLength);
            }

            using var results = _session.Run(_runOptions, names, values, outputNames as IReadOnlyCollection<string> ?? outputNames.ToArray());
            var outputs = new InferenceTensor[outputNames.Count];
            var index = 0;
            foreach (var value in results)
            {
                var info = value.GetTensorTypeAndShape();
                var name = outputNames[index];
                var datatype = FromElementType(info.ElementDataType, name);
                var bytes = value.GetTensorMutableRawData().ToArray();
                outputs[index++] = new InferenceTensor(name, datatype, info.Shape, bytes);
            }

            return outputs;
        }
        catch (OnnxRuntimeException e)
        {
            // The request passed the manifest checks, so the runtime rejecting it means a value-dependent problem
            // (for example an index out of range); report it as the caller's, naming the model.
            throw new ModelException(
                ModelErrorKind.InvalidArgument,
                $"Model '{_manifest.Name}' version '{_manifest.Version}' could not run this input: {e.Message}");
        }
        finally
        {
            foreach (var value in values)
            {
                value?.Dispose();
            }

            foreach (var pin in pins)
            {
                if (pin.IsAllocated)
                {
                    pin.Free();
                }
            }
        }
    }

    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
    }

    internal static TensorElementType ToElementType(TensorDatatype datatype) => datatype switch
    {
        TensorDatatype.Bool => TensorElementType.Bool,
        TensorDatatype.UInt8 => TensorElementType.UInt8,
        TensorDatatype.UInt16 => TensorElementType.UInt16,
        TensorDatatype.UInt32 => TensorElementType.UInt32,
        TensorDatatype.UInt64 => TensorElementType.UInt64,
        TensorDatatype.Int8 => TensorElementType.Int8,
        TensorDatatype.Int16 => TensorElementType.Int16,
        TensorDatatype.Int32 => TensorElementType.Int32,
        TensorDatatype.Int64 => TensorElementType.Int64,
        TensorDatatype.FP16 => TensorElementType.Float16,
        TensorDatatype.FP32 => TensorElementType.Float,
        TensorDatatype.FP64 => TensorElementType.Double,
        TensorDatatype.Bytes => TensorElementType.String,
        _ => throw new UnreachableException($"Unknown datatype {datatype}."),
    };

    internal static TensorDatatype? TryFromElementType(TensorElementType type) => type switch
    {
        TensorElementType.Bool => TensorDatatype.Bool,
        TensorElementType.UInt8 => TensorDatatype.UInt8,
        TensorElementType.UInt16 => TensorDatatype.UInt16,
        TensorElementType.UInt32 => TensorDatatype.UInt32,
        TensorElementType.UInt64 => TensorDatatype.UInt64,
        TensorElementType.Int8 => TensorDatatype.Int8,
        TensorElementType.Int16 => TensorDatatype.Int16,
        TensorElementType.Int32 => TensorDatatype.Int32,
        TensorElementType.Int64 => TensorDatatype.Int64,
        TensorElementType.Float16 => TensorDatatype.FP16,
        TensorElementType.Float => TensorDatatype.FP32,
        TensorElementType.Double => TensorDatatype.FP64,
        TensorElementType.String => TensorDatatype.Bytes,
        _ => null,
    };

    private static TensorDatatype FromElementType(TensorElementType type, string name) =>
        TryFromElementType(type) ?? throw new ModelException(
            ModelErrorKind.Unavailable, $"Output '{name}' has element type {type}, which the server cannot return.");

    private static void Compare(string kind, IReadOnlyList<TensorSpec> declared, IReadOnlyDictionary<string, NodeMetadata> actual, List<string> problems)
    {
        foreach (var spec in declared)
        {
            if (!actual.TryGetValue(spec.Name, out var meta))
            {
                problems.Add($"{kind} '{spec.Name}' is not in the model file (it has {string.Join(", ", actual.Keys.Select(k => $"'{k}'"))})");
                continue;
            }

            if (!meta.IsTensor)
            {
                problems.Add($"{kind} '{spec.Name}' is a {meta.OnnxValueType} in the model file, not a tensor");
                continue;
            }

            var datatype = TryFromElementType(meta.ElementDataType);
            if (datatype != spec.Datatype)
            {
                problems.Add($"{kind} '{spec.Name}': the manifest says {spec.Datatype.ToName()}, the model file has {meta.ElementDataType}");
            }

            var dims = meta.Dimensions;
            if (dims.Length != spec.Shape.Count)
            {
                problems.Add($"{kind} '{spec.Name}': the manifest shape {TensorDatatypes.FormatShape(spec.Shape)} has {spec.Shape.Count} dimensions, the model file's {FormatDims(dims)} has {dims.Length}");
                continue;
            }

            for (var d = 0; d < dims.Length; d++)
            {
                // A fixed dimension in the file must be declared with the same size; the manifest may fix a
                // dimension the file leaves variable.
                if (dims[d] >= 0 && spec.Shape[d] != dims[d])
                {
                    problems.Add($"{kind} '{spec.Name}': dimension {d} is {spec.Shape[d]} in the manifest but {dims[d]} in the model file {FormatDims(dims)}");
                }
            }
        }
    }

    private static string Describe(NodeMetadata meta) =>
        meta.IsTensor ? $"{meta.ElementDataType} {FormatDims(meta.Dimensions)}" : meta.OnnxValueType.ToString();

    private static string FormatDims(int[] dims) => "[" + string.Join(",", dims) + "]";
}

/// <summary>ONNX Runtime settings for every model session on this silo.</summary>
public sealed class OnnxRuntimeOptions
{
    public const string Section = "Carml:OnnxRuntime";

    /// <summary>Threads one run may use; 1 suits many concurrent small requests, 0 lets the runtime choose.</summary>
    public int IntraOpThreads { get; set; } = 1;

    public int InterOpThreads { get; set; } = 1;
}

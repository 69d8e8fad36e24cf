using System.Buffers;
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
    private readonly Dictionary<string, TensorSpec> _outputSpecs;
    private readonly RunOptions _runOptions = new();

    private OnnxModelSession(InferenceSession session, ModelManifest manifest, string executionProvider)
    {
        _session = session;
        _manifest = manifest;
        ExecutionProvider = executionProvider;
        _allOutputNames = manifest.Outputs.Select(o => o.Name).ToArray();
        _outputSpecs = manifest.Outputs.ToDictionary(o => o.Name, StringComparer.Ordinal);
    }

    public string ExecutionProvider { get; }

    /// <summary>Why CUDA was asked for but the session runs on CPU (the CUDA provider failed to attach), or null.</summary>
    public string? ProviderFallback { get; private init; }

    /// <summary>
    /// Opens the model file and checks it against the manifest. Throws <see cref="ModelException"/> (InvalidArgument)
    /// listing every mismatch, or when the file is not a loadable ONNX model. With <paramref name="useCuda"/> the CUDA
    /// execution provider is attached (device 0) when the runtime can; if attaching fails the session runs on CPU and
    /// <see cref="ProviderFallback"/> says why.
    /// </summary>
    public static OnnxModelSession Open(string modelPath, ModelManifest manifest, OnnxRuntimeOptions options, bool useCuda = false)
    {
        string? fallback = null;
        InferenceSession? session = null;
        var provider = Placement.ExecutionProviderSelector.Cpu;
        if (useCuda)
        {
            // The CUDA provider can fail to attach (no CUDA build) or to start (CUDA/cuDNN libraries missing or mismatched);
            // either way the model still serves, on CPU, and the status says so.
            try
            {
                using var cudaOptions = SessionOptionsFor(manifest, options);
                cudaOptions.AppendExecutionProvider_CUDA(0);
                session = new InferenceSession(modelPath, cudaOptions);
                provider = Placement.ExecutionProviderSelector.Cuda;
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                fallback = $"the CUDA execution provider could not be used ({e.Message}); running on CPU";
            }
        }

        if (session is null)
        {
            using var sessionOptions = SessionOptionsFor(manifest, options);
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

        return new OnnxModelSession(session, manifest, provider) { ProviderFallback = fallback };
    }

    private static SessionOptions SessionOptionsFor(ModelManifest manifest, OnnxRuntimeOptions options) => new()
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        IntraOpNumThreads = manifest.Runtime?.IntraOpThreads ?? options.IntraOpThreads,
        InterOpNumThreads = manifest.Runtime?.InterOpThreads ?? options.InterOpThreads,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };

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

    /// <summary>
    /// Runs the model on one request (validated against the manifest). Inputs are handed to the runtime straight from
    /// the request's arrays (pinned, not copied); outputs whose shape the manifest fixes are written by the runtime
    /// straight into the arrays that are returned.
    /// </summary>
    public IReadOnlyList<InferenceTensor> Run(InferenceRequest request)
    {
        var inputs = request.Inputs;
        var names = new string[inputs.Count];
        var values = new OrtValue[inputs.Count];
        var pins = new GCHandle[inputs.Count];
        var outputNames = OutputNames(request);
        var rows = _manifest.MaxBatchSize > 0 ? inputs[0].Shape[0] : 1;
        try
        {
            for (var i = 0; i < inputs.Count; i++)
            {
                var tensor = inputs[i];
                names[i] = tensor.Name;
                values[i] = Wrap(tensor.Data, tensor.Datatype, tensor.Shape, out pins[i]);
            }

            return RunCore(names, values, outputNames, rows, pooled: false, out _, out _);
        }
        catch (OnnxRuntimeException e)
        {
            throw CannotRun(e);
        }
        finally
        {
            Release(values, pins);
        }
    }

    /// <summary>
    /// Runs requests that share their non-batch dimensions as one batch: inputs are concatenated along the batch
    /// dimension into pooled buffers, and each request gets its own rows of every output, in order.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<InferenceTensor>> RunBatch(IReadOnlyList<InferenceRequest> requests)
    {
        if (requests.Count == 1)
        {
            return [Run(requests[0])];
        }

        var first = requests[0];
        var inputCount = first.Inputs.Count;
        var names = new string[inputCount];
        var values = new OrtValue[inputCount];
        var pins = new GCHandle[inputCount];
        var buffers = new byte[inputCount][];
        var rowsPerRequest = new long[requests.Count];
        long totalRows = 0;
        for (var r = 0; r < requests.Count; r++)
        {
            rowsPerRequest[r] = requests[r].Inputs[0].Shape[0];
            totalRows += rowsPerRequest[r];
        }

        byte[]? outputBuffer = null;
        try
        {
            for (var i = 0; i < inputCount; i++)
            {
                var template = first.Inputs[i];
                names[i] = template.Name;
                long bytes = 0;
                foreach (var request in requests)
                {
                    bytes += Find(request.Inputs, template.Name).Data.LongLength;
                }

                var buffer = buffers[i] = ArrayPool<byte>.Shared.Rent(checked((int)bytes));
                var offset = 0;
                foreach (var request in requests)
                {
                    var data = Find(request.Inputs, template.Name).Data;
                    data.CopyTo(buffer, offset);
                    offset += data.Length;
                }

                var shape = (long[])template.Shape.Clone();
                shape[0] = totalRows;
                values[i] = Wrap(buffer, template.Datatype, shape, out pins[i], bytes);
            }

            var outputs = RunCore(names, values, OutputNames(first), totalRows, pooled: true, out var offsets, out outputBuffer);
            return Split(outputs, offsets, rowsPerRequest, totalRows);
        }
        catch (OnnxRuntimeException e)
        {
            throw CannotRun(e);
        }
        finally
        {
            Release(values, pins);
            foreach (var buffer in buffers)
            {
                if (buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }

            if (outputBuffer is not null)
            {
                ArrayPool<byte>.Shared.Return(outputBuffer);
            }
        }
    }

    /// <summary>Whether two validated requests can share a batch: the same inputs with the same non-batch dimensions, the same outputs.</summary>
    public static bool CanShareBatch(InferenceRequest a, InferenceRequest b)
    {
        if (a.Inputs.Count != b.Inputs.Count || !SameOutputs(a.RequestedOutputs, b.RequestedOutputs))
        {
            return false;
        }

        foreach (var input in a.Inputs)
        {
            InferenceTensor? other = null;
            foreach (var candidate in b.Inputs)
            {
                if (candidate.Name == input.Name)
                {
                    other = candidate;
                    break;
                }
            }

            if (other is null || other.Datatype != input.Datatype || other.Shape.Length != input.Shape.Length
                || !input.Shape.AsSpan(1).SequenceEqual(other.Shape.AsSpan(1)))
            {
                return false;
            }
        }

        return true;
    }

    private static bool SameOutputs(IReadOnlyList<string>? a, IReadOnlyList<string>? b)
    {
        var countA = a?.Count ?? 0;
        var countB = b?.Count ?? 0;
        if (countA != countB)
        {
            return false;
        }

        for (var i = 0; i < countA; i++)
        {
            if (a![i] != b![i])
            {
                return false;
            }
        }

        return true;
    }

    private IReadOnlyList<string> OutputNames(InferenceRequest request) =>
        request.RequestedOutputs is { Count: > 0 } requested ? requested : _allOutputNames;

    /// <summary>
    /// Runs with outputs preallocated where the manifest fixes their shape, so the runtime writes straight into them;
    /// else the runtime allocates them and they are copied once. With <paramref name="pooled"/> every output lives in
    /// one rented buffer (<paramref name="rented"/>, at <paramref name="offsets"/>), to be split and returned by the
    /// caller; otherwise each output owns its array.
    /// </summary>
    private InferenceTensor[] RunCore(
        string[] names, OrtValue[] values, IReadOnlyList<string> outputNames, long rows, bool pooled, out long[] offsets, out byte[]? rented)
    {
        var count = outputNames.Count;
        var outputs = new InferenceTensor[count];
        offsets = new long[count];
        rented = null;
        var shapes = new long[count][];
        var lengths = new long[count];
        long total = 0;
        var known = true;
        for (var i = 0; i < count; i++)
        {
            var spec = _outputSpecs[outputNames[i]];
            var shape = new long[spec.Shape.Count];
            for (var d = 0; d < shape.Length; d++)
            {
                shape[d] = d == 0 && _manifest.MaxBatchSize > 0 ? rows : spec.Shape[d];
                known &= shape[d] >= 0;
            }

            shapes[i] = shape;
            lengths[i] = known ? (TensorDatatypes.ElementCount(shape) ?? 0) * spec.Datatype.ElementSize() : 0;
            offsets[i] = total;
            total += lengths[i];
        }

        var runNames = outputNames as IReadOnlyCollection<string> ?? [.. outputNames];
        if (known)
        {
            var outputValues = new OrtValue[count];
            var pins = new GCHandle[count];
            try
            {
                if (pooled)
                {
                    rented = ArrayPool<byte>.Shared.Rent(checked((int)Math.Max(total, 1)));
                    pins[0] = GCHandle.Alloc(rented, GCHandleType.Pinned);
                }

                for (var i = 0; i < count; i++)
                {
                    var spec = _outputSpecs[outputNames[i]];
                    if (rented is not null)
                    {
                        outputValues[i] = OrtValue.CreateTensorValueWithData(
                            OrtMemoryInfo.DefaultInstance, ToElementType(spec.Datatype), shapes[i], pins[0].AddrOfPinnedObject() + (nint)offsets[i], lengths[i]);
                        outputs[i] = new InferenceTensor(outputNames[i], spec.Datatype, shapes[i], rented);
                    }
                    else
                    {
                        var data = new byte[lengths[i]];
                        offsets[i] = 0;
                        outputValues[i] = Wrap(data, spec.Datatype, shapes[i], out pins[i]);
                        outputs[i] = new InferenceTensor(outputNames[i], spec.Datatype, shapes[i], data);
                    }
                }

                _session.Run(_runOptions, names, values, runNames, outputValues);
                return outputs;
            }
            finally
            {
                Release(outputValues, pins);
            }
        }

        using var results = _session.Run(_runOptions, names, values, runNames);
        var index = 0;
        foreach (var value in results)
        {
            var info = value.GetTensorTypeAndShape();
            var name = outputNames[index];
            var datatype = FromElementType(info.ElementDataType, name);
            offsets[index] = 0;
            outputs[index] = new InferenceTensor(name, datatype, info.Shape, value.GetTensorMutableRawData().ToArray());
            index++;
        }

        return outputs;
    }

    /// <summary>Each request's rows of every output, copied out of the batch's outputs.</summary>
    private static IReadOnlyList<InferenceTensor>[] Split(InferenceTensor[] outputs, long[] offsets, long[] rowsPerRequest, long totalRows)
    {
        var perRequest = new InferenceTensor[rowsPerRequest.Length][];
        for (var r = 0; r < perRequest.Length; r++)
        {
            perRequest[r] = new InferenceTensor[outputs.Length];
        }

        for (var o = 0; o < outputs.Length; o++)
        {
            var output = outputs[o];
            if (output.Shape.Length == 0 || output.Shape[0] != totalRows)
            {
                throw new ModelException(
                    ModelErrorKind.Unavailable,
                    $"Output '{output.Name}' has shape {TensorDatatypes.FormatShape(output.Shape)}, whose first dimension is not the batch of {totalRows} rows.");
            }

            var rowBytes = (TensorDatatypes.ElementCount(output.Shape) ?? 0) * output.Datatype.ElementSize() / totalRows;
            var offset = offsets[o];
            for (var r = 0; r < rowsPerRequest.Length; r++)
            {
                var bytes = rowsPerRequest[r] * rowBytes;
                var data = new byte[bytes];
                Array.Copy(output.Data, offset, data, 0, bytes);
                offset += bytes;
                var shape = (long[])output.Shape.Clone();
                shape[0] = rowsPerRequest[r];
                perRequest[r][o] = new InferenceTensor(output.Name, output.Datatype, shape, data);
            }
        }

        return perRequest;
    }

    private static InferenceTensor Find(IReadOnlyList<InferenceTensor> inputs, string name)
    {
        for (var i = 0; i < inputs.Count; i++)
        {
            if (inputs[i].Name == name)
            {
                return inputs[i];
            }
        }

        throw new InvalidOperationException($"Input '{name}' is missing from a request in the batch.");
    }

    private static OrtValue Wrap(byte[] data, TensorDatatype datatype, long[] shape, out GCHandle pin, long? length = null)
    {
        pin = GCHandle.Alloc(data, GCHandleType.Pinned);
        return OrtValue.CreateTensorValueWithData(
            OrtMemoryInfo.DefaultInstance, ToElementType(datatype), shape, pin.AddrOfPinnedObject(), length ?? data.LongLength);
    }

    private static void Release(OrtValue[] values, GCHandle[] pins)
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

    private ModelException CannotRun(OnnxRuntimeException e) =>
        // The requests passed the manifest checks, so the runtime rejecting them means a value-dependent problem
        // (for example an index out of range); report it as the caller's, naming the model.
        new(ModelErrorKind.InvalidArgument, $"Model '{_manifest.Name}' version '{_manifest.Version}' could not run this input: {e.Message}");

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

    /// <summary>Runs (batches) one replica executes at once unless its manifest says otherwise; 0 = one per core.</summary>
    public int MaxConcurrentRuns { get; set; }

    public int ConcurrentRunsFor(ModelManifest manifest) =>
        manifest.Runtime?.MaxConcurrentRuns ?? (MaxConcurrentRuns > 0 ? MaxConcurrentRuns : Environment.ProcessorCount);
}

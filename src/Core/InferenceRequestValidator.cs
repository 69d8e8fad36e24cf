using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>
/// Checks an inference request against the manifest before it reaches the runtime: input names, datatypes, shapes,
/// byte lengths, the batch limit and requested outputs. Every problem is named with its tensor and what was expected.
/// </summary>
public static class InferenceRequestValidator
{
    /// <summary>Throws <see cref="ModelException"/> (InvalidArgument) listing every problem; returns the batch size.</summary>
    public static long Validate(ModelManifest manifest, InferenceRequest request)
    {
        List<string>? problems = null;
        void Problem(string text) => (problems ??= []).Add(text);

        long batch = -1;
        var inputs = request.Inputs;
        for (var i = 0; i < inputs.Count; i++)
        {
            var tensor = inputs[i];
            var spec = Find(manifest.Inputs, tensor.Name);
            if (spec is null)
            {
                Problem($"unknown input '{tensor.Name}'; the model takes {Names(manifest.Inputs)}");
                continue;
            }

            for (var j = 0; j < i; j++)
            {
                if (inputs[j].Name == tensor.Name)
                {
                    Problem($"input '{tensor.Name}' is given more than once");
                }
            }

            if (tensor.Datatype != spec.Datatype)
            {
                Problem($"input '{tensor.Name}': datatype {tensor.Datatype.ToName()} does not match the model's {spec.Datatype.ToName()}");
                continue;
            }

            if (!ShapeMatches(manifest, spec, tensor.Shape, out var shapeProblem))
            {
                Problem($"input '{tensor.Name}': {shapeProblem}");
                continue;
            }

            if (manifest.MaxBatchSize > 0)
            {
                var rows = tensor.Shape[0];
                if (batch >= 0 && rows != batch)
                {
                    Problem($"input '{tensor.Name}': batch size {rows} differs from the other inputs' {batch}");
                }

                batch = rows;
            }

            var expectedBytes = TensorDatatypes.ElementCount(tensor.Shape) * spec.Datatype.ElementSize();
            if (expectedBytes != tensor.Data.LongLength)
            {
                Problem($"input '{tensor.Name}': {tensor.Data.LongLength} bytes of data do not match shape {TensorDatatypes.FormatShape(tensor.Shape)} of {spec.Datatype.ToName()} ({expectedBytes} bytes expected)");
            }
        }

        foreach (var spec in manifest.Inputs)
        {
            if (!Contains(inputs, spec.Name))
            {
                Problem($"missing input '{spec.Name}' ({spec.Datatype.ToName()} {TensorDatatypes.FormatShape(spec.Shape)})");
            }
        }

        if (request.RequestedOutputs is { } outputs)
        {
            for (var i = 0; i < outputs.Count; i++)
            {
                if (Find(manifest.Outputs, outputs[i]) is null)
                {
                    Problem($"unknown output '{outputs[i]}'; the model returns {Names(manifest.Outputs)}");
                }
                else if (outputs.Take(i).Contains(outputs[i]))
                {
                    Problem($"output '{outputs[i]}' is requested more than once");
                }
            }
        }

        if (problems is not null)
        {
            throw new ModelException(ModelErrorKind.InvalidArgument, string.Join("; ", problems), problems);
        }

        return batch < 0 ? 1 : batch;
    }

    private static bool ShapeMatches(ModelManifest manifest, TensorSpec spec, long[] shape, out string problem)
    {
        var expected = TensorDatatypes.FormatShape(spec.Shape);
        if (shape.Length != spec.Shape.Count)
        {
            problem = $"shape {TensorDatatypes.FormatShape(shape)} has {shape.Length} dimensions, the model expects {spec.Shape.Count} {expected}";
            return false;
        }

        for (var d = 0; d < shape.Length; d++)
        {
            if (shape[d] < 0)
            {
                problem = $"shape {TensorDatatypes.FormatShape(shape)} has a negative dimension";
                return false;
            }

            if (spec.Shape[d] >= 0 && shape[d] != spec.Shape[d])
            {
                problem = $"shape {TensorDatatypes.FormatShape(shape)} does not match the model's {expected} at dimension {d}";
                return false;
            }
        }

        if (manifest.MaxBatchSize > 0 && shape.Length > 0)
        {
            if (shape[0] > manifest.MaxBatchSize)
            {
                problem = $"batch size {shape[0]} exceeds the model's max_batch_size {manifest.MaxBatchSize}";
                return false;
            }

            if (shape[0] == 0)
            {
                problem = "batch size 0: send at least one row";
                return false;
            }
        }

        problem = string.Empty;
        return true;
    }

    private static TensorSpec? Find(IReadOnlyList<TensorSpec> specs, string name)
    {
        for (var i = 0; i < specs.Count; i++)
        {
            if (specs[i].Name == name)
            {
                return specs[i];
            }
        }

        return null;
    }

    private static bool Contains(IReadOnlyList<InferenceTensor> tensors, string name)
    {
        for (var i = 0; i < tensors.Count; i++)
        {
            if (tensors[i].Name == name)
            {
                return true;
            }
        }

        return false;
    }

    private static string Names(IReadOnlyList<TensorSpec> specs) =>
        string.Join(", ", specs.Select(s => $"'{s.Name}' ({s.Datatype.ToName()} {TensorDatatypes.FormatShape(s.Shape)})"));
}

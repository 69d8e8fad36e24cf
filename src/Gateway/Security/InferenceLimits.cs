using Carml.Orleans.Core;
using Carml.Orleans.Gateway.KServe.Grpc;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Security;

/// <summary>
/// Per-request tensor limits (<see cref="LimitOptions"/>), checked from the shapes before a request reaches a model:
/// element count across all inputs and batch size. Over a limit is the caller's mistake: 400 / INVALID_ARGUMENT.
/// </summary>
public sealed class InferenceLimits(IOptions<LimitOptions> options)
{
    public void Check(InferenceRequest request) => Check(request.Inputs.Select(i => (i.Name, (IReadOnlyList<long>)i.Shape)));

    public void Check(ModelInferRequest request) => Check(request.Inputs.Select(i => (i.Name, (IReadOnlyList<long>)i.Shape)));

    public void Check(IEnumerable<(string Name, IReadOnlyList<long> Shape)> inputs)
    {
        var limits = options.Value;
        long total = 0;
        foreach (var (name, shape) in inputs)
        {
            if (limits.MaxBatchSize > 0 && shape.Count > 0 && shape[0] > limits.MaxBatchSize)
            {
                throw ModelException.InvalidArgument(
                    $"input '{name}': batch size {shape[0]} exceeds the server's limit of {limits.MaxBatchSize} (Carml:Limits:MaxBatchSize).");
            }

            total = Saturating(total, Elements(shape));
        }

        if (limits.MaxTensorElements > 0 && total > limits.MaxTensorElements)
        {
            throw ModelException.InvalidArgument(
                $"The request has {(total == long.MaxValue ? "too many" : total.ToString(System.Globalization.CultureInfo.InvariantCulture))} tensor elements; the server accepts at most {limits.MaxTensorElements} (Carml:Limits:MaxTensorElements).");
        }
    }

    /// <summary>The shape's element count, long.MaxValue when it overflows; 0 for a negative dimension (the validator's to report).</summary>
    private static long Elements(IReadOnlyList<long> shape) =>
        shape.Any(dimension => dimension < 0) ? 0 : TensorDatatypes.ElementCount(shape) ?? long.MaxValue;

    private static long Saturating(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
}

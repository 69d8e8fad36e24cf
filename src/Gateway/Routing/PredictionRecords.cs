using System.Diagnostics;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.Routing;

/// <summary>Run records of predictions: what was asked and answered (shapes, types, sizes; never the data) and how long it took.</summary>
public static class PredictionRecords
{
    public static RunRecord Succeeded(ModelRoute route, InferenceRequest request, InferenceResponse response, DateTimeOffset createdAt, TimeSpan total) =>
        Base(route, request, createdAt, total) with
        {
            Status = RunStatus.Succeeded,
            Outputs = response.Outputs.Select(Summary).ToArray(),
            Timings = new StageTimings(response.Timings.QueueMicroseconds, 0, response.Timings.ComputeMicroseconds, 0, (long)total.TotalMicroseconds),
        };

    public static RunRecord Failed(ModelRoute route, InferenceRequest request, string error, DateTimeOffset createdAt, TimeSpan total) =>
        Base(route, request, createdAt, total) with
        {
            Status = RunStatus.Failed,
            Error = error,
            Timings = new StageTimings(0, 0, 0, 0, (long)total.TotalMicroseconds),
        };

    private static RunRecord Base(ModelRoute route, InferenceRequest request, DateTimeOffset createdAt, TimeSpan total) => new()
    {
        Id = RunIds.New(createdAt),
        Kind = RunKind.Prediction,
        Model = route.Id.Name,
        Version = route.Id.Version,
        BatchSize = route.Manifest.MaxBatchSize > 0 && request.Inputs.Count > 0 && request.Inputs[0].Shape.Length > 0 ? (int)request.Inputs[0].Shape[0] : 1,
        Inputs = request.Inputs.Select(Summary).ToArray(),
        CreatedAt = createdAt,
        FinishedAt = createdAt + total,
        TraceId = Activity.Current is { Recorded: true } traced ? traced.TraceId.ToHexString() : null, // only traces that were kept
        Owner = Security.RequestPrincipal.Owner,
    };

    private static TensorSummary Summary(InferenceTensor tensor) =>
        new(tensor.Name, tensor.Datatype.ToName(), tensor.Shape, tensor.Data.LongLength);
}

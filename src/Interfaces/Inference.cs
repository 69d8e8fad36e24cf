namespace Carml.Orleans.Interfaces;

/// <summary>
/// A tensor as it crosses grain calls: raw little-endian bytes in row-major order, with shape and element type.
/// Immutable: the runtime neither copies it on in-process calls nor lets anybody change it afterwards.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("carml.InferenceTensor")]
public sealed record InferenceTensor(
    [property: Id(0)] string Name,
    [property: Id(1)] TensorDatatype Datatype,
    [property: Id(2)] long[] Shape,
    [property: Id(3)] byte[] Data);

/// <summary>An inference request: the inputs and, optionally, which outputs to return (all when empty).</summary>
[GenerateSerializer, Immutable]
[Alias("carml.InferenceRequest")]
public sealed record InferenceRequest(
    [property: Id(0)] IReadOnlyList<InferenceTensor> Inputs,
    [property: Id(1)] IReadOnlyList<string>? RequestedOutputs = null)
{
    [Id(2)] public string? Id { get; init; }

    /// <summary>How long the request may wait in the replica's queue, in microseconds; 0 = the model's default.</summary>
    [Id(3)] public long TimeoutMicroseconds { get; init; }
}

/// <summary>
/// Server-side time spent on a request, in microseconds: waiting in the replica's queue, and running its batch
/// (BatchSize rows, this request's included).
/// </summary>
[GenerateSerializer, Immutable]
[Alias("carml.InferenceTimings")]
public sealed record InferenceTimings(
    [property: Id(0)] long QueueMicroseconds,
    [property: Id(1)] long ComputeMicroseconds,
    [property: Id(2)] int BatchSize = 1);

[GenerateSerializer, Immutable]
[Alias("carml.InferenceResponse")]
public sealed record InferenceResponse(
    [property: Id(0)] string ModelName,
    [property: Id(1)] string ModelVersion,
    [property: Id(2)] IReadOnlyList<InferenceTensor> Outputs,
    [property: Id(3)] InferenceTimings Timings)
{
    [Id(4)] public string? Id { get; init; }
}

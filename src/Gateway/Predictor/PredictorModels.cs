using Carml.Orleans.Preprocessing;

namespace Carml.Orleans.Gateway.Predictor;

/// <summary>One input of a prediction request: an id the caller knows it by, and the encoded image.</summary>
public sealed record PredictorInput(string Id, byte[] Bytes);

/// <summary>Time spent on a request, in microseconds, per stage.</summary>
public sealed record PredictionTimings(long FetchUs, long DecodeUs, long PreprocessUs, long InferUs, long PostprocessUs, long TotalUs);

/// <summary>Per-input time when the predictor traces at level <c>full</c>.</summary>
public sealed record InputTimings(long FetchUs, long DecodeUs, long PreprocessUs);

/// <summary>An output passed through as bytes (outputs without classification post-processing).</summary>
public sealed record RawOutput(string Name, string Datatype, long[] Shape, byte[] Data);

/// <summary>What the model said about one input.</summary>
public sealed record PredictionResult(string InputId, IReadOnlyList<Feature> Features, IReadOnlyList<RawOutput> Outputs, InputTimings? Timings);

/// <summary>The answer to one predictor request.</summary>
public sealed record PredictionResponse(
    string RequestId,
    string TraceId,
    string PredictorId,
    string Model,
    string Version,
    IReadOnlyList<PredictionResult> Results,
    PredictionTimings Timings);

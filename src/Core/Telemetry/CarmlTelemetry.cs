using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Carml.Orleans.Core.Telemetry;

/// <summary>
/// The one <see cref="ActivitySource"/> and one <see cref="Meter"/> named <c>Carml.Orleans</c> that the gateway, grains
/// and batcher report through, with the span names, attribute names and instruments they share. OpenTelemetry (or any
/// listener) subscribes by that name; without a listener nothing here allocates.
/// </summary>
public static class CarmlTelemetry
{
    public const string Name = "Carml.Orleans";

    public static readonly ActivitySource Source = new(Name, typeof(CarmlTelemetry).Assembly.GetName().Version?.ToString());

    public static readonly Meter Meter = new(Name, typeof(CarmlTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Span names, by the level that first shows them.</summary>
    public static class Spans
    {
        /// <summary>Application: resolving a model name and version to the replica that serves it.</summary>
        public const string Route = "carml.route";

        /// <summary>Application: queuing the prediction's run record (written in batches off the request path).</summary>
        public const string RunRecord = "carml.run.record";

        /// <summary>Model: the call into the model's replica (a grain call, or in-process in standalone mode).</summary>
        public const string ReplicaCall = "carml.replica.infer";

        /// <summary>Model: the time the request waited in the replica's dynamic batcher.</summary>
        public const string QueueWait = "carml.batch.queue";

        /// <summary>Model: predictor API decoding and pre-processing of a batch of inputs.</summary>
        public const string Preprocess = "carml.preprocess";

        /// <summary>Model: predictor API post-processing (top-k labelled features).</summary>
        public const string Postprocess = "carml.postprocess";

        /// <summary>Framework: the ONNX Runtime run of the batch the request was part of.</summary>
        public const string Inference = "carml.onnxruntime.run";
    }

    /// <summary>Attribute (tag) names on spans and metrics.</summary>
    public static class Attributes
    {
        public const string Model = "carml.model";
        public const string Version = "carml.model.version";
        public const string BatchSize = "carml.batch_size";
        public const string BatchRequests = "carml.batch.requests";
        public const string Device = "carml.device";
        public const string ExecutionProvider = "carml.execution_provider";
        public const string Silo = "carml.silo";
        public const string TraceLevel = "carml.trace_level";
        public const string Path = "carml.replica.path";
        public const string RunId = "carml.run.id";
        public const string Inputs = "carml.inputs";
        public const string InputShapes = "carml.input.shapes";
        public const string InputDatatypes = "carml.input.datatypes";
        public const string InputIds = "carml.input.ids";
        public const string ErrorKind = "carml.error.kind";
    }

    /// <summary>Bucket bounds for latency histograms in seconds: 50 µs to 10 s (the SDK's default buckets are for milliseconds).</summary>
    public static readonly IReadOnlyList<double> SecondsBuckets =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Bucket bounds for batch sizes (rows per ONNX Runtime run).</summary>
    public static readonly IReadOnlyList<int> BatchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

    /// <summary>Inference requests by model, version, protocol (http, grpc) and outcome (success or the error kind).</summary>
    public static readonly Counter<long> Requests = Meter.CreateCounter<long>(
        "carml_inference_requests", "{request}", "Inference requests by model, version, protocol and outcome.");

    /// <summary>Inference requests being served by the gateway now.</summary>
    public static readonly UpDownCounter<long> InFlight = Meter.CreateUpDownCounter<long>(
        "carml_inference_in_flight", "{request}", "Inference requests being served now.");

    /// <summary>Total time of an inference request in the gateway (routing, queue, compute, transfer between processes).</summary>
    public static readonly Histogram<double> RequestSeconds = Meter.CreateHistogram(
        "carml_inference_request_seconds", "s", "Total time of inference requests in the gateway.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    /// <summary>Time requests waited in a replica's dynamic batcher.</summary>
    public static readonly Histogram<double> QueueSeconds = Meter.CreateHistogram(
        "carml_inference_queue_seconds", "s", "Time inference requests waited in a replica's batch queue.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    /// <summary>Time of ONNX Runtime runs (one per batch).</summary>
    public static readonly Histogram<double> ComputeSeconds = Meter.CreateHistogram(
        "carml_inference_compute_seconds", "s", "Time of ONNX Runtime runs, one per batch.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    /// <summary>Rows per ONNX Runtime run.</summary>
    public static readonly Histogram<int> BatchSize = Meter.CreateHistogram(
        "carml_inference_batch_size", "{row}", "Rows per ONNX Runtime run.",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = BatchBuckets });

    /// <summary>Time to open a model's ONNX Runtime session.</summary>
    public static readonly Histogram<double> ModelLoadSeconds = Meter.CreateHistogram(
        "carml_model_load_seconds", "s", "Time to load a model replica (open its ONNX Runtime session).",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });

    /// <summary>Bytes received by tus uploads.</summary>
    public static readonly Counter<long> UploadBytes = Meter.CreateCounter<long>(
        "carml_upload_bytes", "By", "Bytes received by resumable (tus) uploads.");

    /// <summary>Inference tries the gateway repeated on another replica (or the same key re-activated elsewhere).</summary>
    public static readonly Counter<long> FailoverRetries = Meter.CreateCounter<long>(
        "carml_failover_retries", "{try}", "Inference tries repeated after a replica's silo was gone or the replica could not serve.");

    /// <summary>Requests answered UNAVAILABLE or DEADLINE_EXCEEDED because failover ran out of tries or time.</summary>
    public static readonly Counter<long> FailoverGiveUps = Meter.CreateCounter<long>(
        "carml_failover_give_ups", "{request}", "Inference requests that failover gave up on (tries or deadline ran out).");

    /// <summary>Replicas the gateway put in back-off after a silo-gone or unavailable failure.</summary>
    public static readonly Counter<long> ReplicaFailures = Meter.CreateCounter<long>(
        "carml_replica_failures", "{failure}", "Replica tries that failed because the silo was gone or the replica was unavailable.");

    /// <summary>Idle replicas unloaded to make room under a silo's model memory budget.</summary>
    public static readonly Counter<long> ModelEvictions = Meter.CreateCounter<long>(
        "carml_model_evictions", "{replica}", "Idle model replicas unloaded to make room under the silo's model memory budget.");

    private static readonly ConcurrentDictionary<object, LoadedModel> Loaded = new(ReferenceEqualityComparer.Instance);

    /// <summary>Memory held by loaded replicas, estimated by their model file size, by model, version and silo.</summary>
    public static readonly ObservableGauge<long> LoadedBytes = Meter.CreateObservableGauge(
        "carml_model_loaded_bytes", ObserveLoaded, "By", "Memory held by loaded model replicas (estimated by model file size).");

    /// <summary>Counts a loaded replica in <c>carml_model_loaded_bytes</c> until <see cref="UntrackLoaded"/>.</summary>
    public static void TrackLoaded(object replica, string model, string version, string silo, long bytes) =>
        Loaded[replica] = new LoadedModel(model, version, silo, bytes);

    public static void UntrackLoaded(object replica) => Loaded.TryRemove(replica, out _);

    private static IEnumerable<Measurement<long>> ObserveLoaded()
    {
        foreach (var group in Loaded.Values.GroupBy(m => (m.Model, m.Version, m.Silo)))
        {
            yield return new Measurement<long>(
                group.Sum(m => m.Bytes),
                new KeyValuePair<string, object?>("model", group.Key.Model),
                new KeyValuePair<string, object?>("version", group.Key.Version),
                new KeyValuePair<string, object?>("silo", group.Key.Silo));
        }
    }

    /// <summary>
    /// Starts a span of this source when the request's level is at least <paramref name="level"/> and someone listens;
    /// null otherwise, without allocating.
    /// </summary>
    public static Activity? StartSpan(string name, CarmlTraceLevel level, ActivityKind kind = ActivityKind.Internal) =>
        IsTraced(level) ? Source.StartActivity(name, kind) : null;

    /// <summary>Whether spans of <paramref name="level"/> are wanted for the request being served (and someone listens).</summary>
    public static bool IsTraced(CarmlTraceLevel level) => Source.HasListeners() && CarmlTraceLevels.Current >= level;

    /// <summary>Records a span that already happened (queue wait, a batch's run), as a child of the current span.</summary>
    public static Activity? RecordSpan(string name, DateTimeOffset start, TimeSpan duration)
    {
        var activity = Source.StartActivity(name, ActivityKind.Internal, parentContext: default, startTime: start);
        if (activity is not null)
        {
            activity.SetEndTime((start + duration).UtcDateTime);
        }

        return activity;
    }

    /// <summary>Marks a span failed with the error's kind and message.</summary>
    public static void Fail(Activity? activity, Exception exception, string? kind = null)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetStatus(ActivityStatusCode.Error, exception.Message);
        activity.SetTag(Attributes.ErrorKind, kind ?? exception.GetType().Name);
    }

    private sealed record LoadedModel(string Model, string Version, string Silo, long Bytes);
}

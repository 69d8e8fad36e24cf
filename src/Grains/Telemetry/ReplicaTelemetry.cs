using System.Diagnostics;
using Carml.Orleans.Core;
using Carml.Orleans.Core.Batching;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains.Telemetry;

/// <summary>
/// What one loaded replica reports: queue, compute and batch-size metrics (tags built once, so recording allocates
/// nothing), and the queue-wait and ONNX Runtime spans of a request, recorded after the fact from the batcher's timings
/// at the level the request carries in its <see cref="RequestContext"/>.
/// </summary>
internal sealed class ReplicaTelemetry
{
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly ModelManifest _manifest;
    private readonly ReplicaInfo _info;

    public ReplicaTelemetry(ModelManifest manifest, ReplicaInfo info)
    {
        _manifest = manifest;
        _info = info;
        _tags = [new("model", manifest.Name), new("version", manifest.Version)];
    }

    /// <summary>When a traced request entered the queue; <c>default</c> for untraced ones (no clock read).</summary>
    public static DateTimeOffset Enqueued(CarmlTraceLevel level) =>
        level >= CarmlTraceLevel.Model && CarmlTelemetry.Source.HasListeners() ? DateTimeOffset.UtcNow : default;

    /// <summary>A finished ONNX Runtime run of <paramref name="rows"/> rows.</summary>
    public void BatchRan(TimeSpan compute, int rows)
    {
        CarmlTelemetry.ComputeSeconds.Record(compute.TotalSeconds, _tags);
        CarmlTelemetry.BatchSize.Record(rows, _tags);
    }

    /// <summary>A request answered by the batcher: its queue time, and its spans when it is traced.</summary>
    public void Answered<T>(InferenceRequest request, in BatchedResult<T> result, CarmlTraceLevel level, DateTimeOffset enqueued)
    {
        CarmlTelemetry.QueueSeconds.Record(result.QueueTime.TotalSeconds, _tags);
        if (level < CarmlTraceLevel.Model || enqueued == default)
        {
            return;
        }

        using (var queue = CarmlTelemetry.RecordSpan(CarmlTelemetry.Spans.QueueWait, enqueued, result.QueueTime))
        {
            Describe(queue, result.BatchRows, result.BatchRequests, level);
        }

        if (level >= CarmlTraceLevel.Framework)
        {
            using var run = CarmlTelemetry.RecordSpan(CarmlTelemetry.Spans.Inference, enqueued + result.QueueTime, result.ComputeTime);
            Describe(run, result.BatchRows, result.BatchRequests, level);
            if (run is not null && level >= CarmlTraceLevel.Full)
            {
                run.SetTag(CarmlTelemetry.Attributes.Inputs, string.Join(",", request.Inputs.Select(i => i.Name)));
                run.SetTag(CarmlTelemetry.Attributes.InputShapes, string.Join(";", request.Inputs.Select(i => TensorDatatypes.FormatShape(i.Shape))));
                run.SetTag(CarmlTelemetry.Attributes.InputDatatypes, string.Join(",", request.Inputs.Select(i => i.Datatype.ToName())));
            }
        }
    }

    private void Describe(Activity? span, int rows, int requests, CarmlTraceLevel level)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag(CarmlTelemetry.Attributes.Model, _manifest.Name);
        span.SetTag(CarmlTelemetry.Attributes.Version, _manifest.Version);
        span.SetTag(CarmlTelemetry.Attributes.BatchSize, rows);
        span.SetTag(CarmlTelemetry.Attributes.Silo, _info.SiloAddress);
        span.SetTag(CarmlTelemetry.Attributes.ExecutionProvider, _info.ExecutionProvider);
        span.SetTag(CarmlTelemetry.Attributes.Device, Device(_info.ExecutionProvider));
        if (level >= CarmlTraceLevel.Full)
        {
            span.SetTag(CarmlTelemetry.Attributes.BatchRequests, requests);
        }
    }

    private static string Device(string executionProvider) =>
        executionProvider.StartsWith("CUDA", StringComparison.OrdinalIgnoreCase) || executionProvider.StartsWith("Tensorrt", StringComparison.OrdinalIgnoreCase)
            ? "gpu"
            : "cpu";
}

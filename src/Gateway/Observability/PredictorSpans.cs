using System.Diagnostics;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Gateway.Predictor;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.Observability;

/// <summary>The predictor API's pre- and post-processing spans (level model; input ids at level full).</summary>
public static class PredictorSpans
{
    public static Activity? StartPreprocess(ModelId model, int inputs) => Start(CarmlTelemetry.Spans.Preprocess, model, inputs);

    public static Activity? StartPostprocess(ModelId model, int inputs) => Start(CarmlTelemetry.Spans.Postprocess, model, inputs);

    public static void DescribeInputs(Activity? span, IReadOnlyList<PredictorInput> inputs)
    {
        if (span is not null && CarmlTraceLevels.Current >= CarmlTraceLevel.Full)
        {
            span.SetTag(CarmlTelemetry.Attributes.InputIds, string.Join(",", inputs.Select(i => i.Id)));
        }
    }

    private static Activity? Start(string name, ModelId model, int inputs)
    {
        var span = CarmlTelemetry.StartSpan(name, CarmlTraceLevel.Model);
        span?.SetTag(CarmlTelemetry.Attributes.Model, model.Name);
        span?.SetTag(CarmlTelemetry.Attributes.Version, model.Version);
        span?.SetTag(CarmlTelemetry.Attributes.BatchSize, inputs);
        return span;
    }
}

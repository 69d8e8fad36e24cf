using System.Diagnostics;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Interfaces;
using Orleans.Runtime;

namespace Carml.Orleans.Tests.Telemetry;

/// <summary>Trace levels: parsing, carrying in the RequestContext, and spans that exist only at their level.</summary>
public sealed class CarmlTraceLevelTests
{
    [Theory]
    [InlineData("none", CarmlTraceLevel.None)]
    [InlineData("APPLICATION", CarmlTraceLevel.Application)]
    [InlineData(" model ", CarmlTraceLevel.Model)]
    [InlineData("Framework", CarmlTraceLevel.Framework)]
    [InlineData("full", CarmlTraceLevel.Full)]
    [InlineData("NO_TRACE", CarmlTraceLevel.None)]
    [InlineData("MODEL_TRACE", CarmlTraceLevel.Model)]
    [InlineData("FRAMEWORK_TRACE", CarmlTraceLevel.Framework)]
    [InlineData("LIBRARY_TRACE", CarmlTraceLevel.Full)]
    [InlineData("hardware", CarmlTraceLevel.Full)]
    public void Level_names_parse_in_carmls_and_short_spellings(string text, CarmlTraceLevel expected)
    {
        Assert.True(CarmlTraceLevels.TryParse(text, out var level));
        Assert.Equal(expected, level);
    }

    [Theory]
    [InlineData("")]
    [InlineData("verbose")]
    [InlineData("3")]
    [InlineData("model,full")]
    public void Unknown_level_names_are_an_invalid_argument_naming_the_choices(string text)
    {
        Assert.False(CarmlTraceLevels.TryParse(text, out _));
        var error = Assert.Throws<ModelException>(() => CarmlTraceLevels.Parse(text, "Carml-Trace-Level"));
        Assert.Equal(ModelErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("none, application, model, framework, full", error.Message);
    }

    [Fact]
    public void A_level_carried_by_name_from_an_older_peer_is_still_read()
    {
        RequestContext.Clear();
        RequestContext.Set(CarmlTraceLevels.RequestContextKey, "model");

        Assert.Equal(CarmlTraceLevel.Model, CarmlTraceLevels.Current);
        RequestContext.Clear();
    }

    [Fact]
    public async Task The_level_travels_with_the_request_context_into_awaited_work_and_none_clears_it()
    {
        RequestContext.Clear();
        Assert.Equal(CarmlTraceLevel.None, CarmlTraceLevels.Current);

        CarmlTraceLevels.SetCurrent(CarmlTraceLevel.Framework);
        var seen = await Task.Run(() => CarmlTraceLevels.Current);

        Assert.Equal(CarmlTraceLevel.Framework, seen);
        Assert.Equal((int)CarmlTraceLevel.Framework, RequestContext.Get(CarmlTraceLevels.RequestContextKey));
        CarmlTraceLevels.SetCurrent(CarmlTraceLevel.None);
        Assert.Null(RequestContext.Get(CarmlTraceLevels.RequestContextKey));
        RequestContext.Clear();
    }

    [Fact]
    public void Spans_start_only_at_or_above_the_requests_level()
    {
        RequestContext.Clear();
        CarmlTraceLevels.SetCurrent(CarmlTraceLevel.Model);
        var started = new List<string>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == CarmlTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = activity => { lock (started) { started.Add(activity.OperationName); } },
        };
        ActivitySource.AddActivityListener(listener);

        using (CarmlTelemetry.StartSpan("carml.unit.model", CarmlTraceLevel.Model))
        using (CarmlTelemetry.StartSpan("carml.unit.framework", CarmlTraceLevel.Framework))
        {
        }

        lock (started)
        {
            Assert.Contains("carml.unit.model", started);
            Assert.DoesNotContain("carml.unit.framework", started);
        }

        RequestContext.Clear();
    }

    [Fact]
    public void A_recorded_span_of_the_past_keeps_its_start_and_duration()
    {
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == CarmlTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        var start = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

        using var span = CarmlTelemetry.RecordSpan("carml.unit.past", start, TimeSpan.FromMilliseconds(7));

        Assert.NotNull(span);
        Assert.Equal(start.UtcDateTime, span.StartTimeUtc);
        Assert.Equal(TimeSpan.FromMilliseconds(7), span.Duration);
    }

    [Fact]
    public void Raising_the_level_records_a_request_span_that_level_none_had_dropped()
    {
        RequestContext.Clear();
        using var request = new Activity("request");
        request.ActivityTraceFlags = ActivityTraceFlags.None;
        request.Start();
        request.IsAllDataRequested = false;

        CarmlTraceLevels.Raise(CarmlTraceLevel.Model);
        CarmlTraceLevels.Raise(CarmlTraceLevel.Application); // never lowers

        Assert.Equal(CarmlTraceLevel.Model, CarmlTraceLevels.Current);
        Assert.True(request.Recorded);
        Assert.True(request.IsAllDataRequested);
        RequestContext.Clear();
    }
}

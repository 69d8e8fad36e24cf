using System.Collections;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Carml.Orleans.Gateway.KServe.Grpc;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace Carml.Orleans.Tests.Observability;

/// <summary>Spans a thread-safe in-memory exporter collected, shared by the tests of a class.</summary>
public sealed class ExportedSpans : ICollection<Activity>
{
    private readonly List<Activity> _spans = [];

    public int Count
    {
        get
        {
            lock (_spans)
            {
                return _spans.Count;
            }
        }
    }

    public bool IsReadOnly => false;

    public void Add(Activity item)
    {
        lock (_spans)
        {
            _spans.Add(item);
        }
    }

    public IReadOnlyList<Activity> OfTrace(string traceId)
    {
        lock (_spans)
        {
            return _spans.Where(s => s.TraceId.ToHexString() == traceId).ToList();
        }
    }

    public void Clear()
    {
        lock (_spans)
        {
            _spans.Clear();
        }
    }

    public bool Contains(Activity item)
    {
        lock (_spans)
        {
            return _spans.Contains(item);
        }
    }

    public void CopyTo(Activity[] array, int arrayIndex)
    {
        lock (_spans)
        {
            _spans.CopyTo(array, arrayIndex);
        }
    }

    public bool Remove(Activity item)
    {
        lock (_spans)
        {
            return _spans.Remove(item);
        }
    }

    public IEnumerator<Activity> GetEnumerator()
    {
        lock (_spans)
        {
            return _spans.ToList().GetEnumerator();
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A gateway whose tracer provider also exports to memory, and records every prediction as a run.</summary>
public sealed class TracingFixture : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private GatewayInstance? _gateway;

    public ExportedSpans Spans { get; } = new();

    public GatewayInstance Gateway => _gateway ?? throw new InvalidOperationException("The gateway has not started.");

    public async ValueTask InitializeAsync() => _gateway = await GatewayInstance.StartAsync(
        _data.Path,
        new Dictionary<string, string?> { ["Carml:Runs:Record"] = "all" },
        services => services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(Spans)));

    private readonly OrientationModelRegistration _orientation = new();

    /// <summary>Registers the PP-OCR orientation classifier (an image model) once, for the predictor API's spans.</summary>
    public Task EnsureOrientationModelAsync() => _orientation.EnsureAsync(Gateway.Http);

    public async ValueTask DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        _data.Dispose();
    }
}

/// <summary>
/// One Iris prediction at each CarML trace level over HTTP and gRPC: which spans exist, how they nest, what they say,
/// and that the client gets the trace id (header or trailer) and the run record stores it.
/// </summary>
public sealed class TracingTests(TracingFixture fixture) : IClassFixture<TracingFixture>
{
    private const string AspNetCoreSource = "Microsoft.AspNetCore";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private GatewayInstance Gateway => fixture.Gateway;

    public static TheoryData<string, string> LevelsAndProtocols() => new()
    {
        { "application", "http" }, { "model", "http" }, { "framework", "http" }, { "full", "http" },
        { "application", "grpc" }, { "model", "grpc" }, { "framework", "grpc" }, { "full", "grpc" },
    };

    [Theory]
    [MemberData(nameof(LevelsAndProtocols))]
    public async Task A_prediction_at_each_trace_level_has_exactly_that_levels_spans_nested_under_the_request(string level, string protocol)
    {
        var traceId = protocol == "http" ? await InferHttpAsync(level) : await InferGrpcAsync(level);

        var spans = await WaitForTraceAsync(traceId, level switch
        {
            "application" => [CarmlSpan("carml.route"), CarmlSpan("carml.run.record")],
            "model" => [CarmlSpan("carml.replica.infer"), CarmlSpan("carml.batch.queue"), CarmlSpan("carml.run.record")],
            _ => [CarmlSpan("carml.onnxruntime.run"), CarmlSpan("carml.batch.queue"), CarmlSpan("carml.run.record")],
        });

        var root = Assert.Single(spans, s => s.Source.Name == AspNetCoreSource);
        Assert.Equal(ActivityKind.Server, root.Kind);
        Assert.Equal(default, root.ParentSpanId);
        Assert.Equal(level, root.GetTagItem("carml.trace_level"));
        var names = spans.Where(s => s.Source.Name == "Carml.Orleans").Select(s => s.OperationName).ToHashSet();
        var expected = new HashSet<string> { "carml.route", "carml.run.record" };
        if (level is "model" or "framework" or "full")
        {
            expected.UnionWith(["carml.replica.infer", "carml.batch.queue"]);
        }

        if (level is "framework" or "full")
        {
            expected.Add("carml.onnxruntime.run");
        }

        Assert.Equal(expected.Order(), names.Order());

        // Routing and run recording hang off the request; everything inside the replica hangs off the replica call.
        Assert.Equal(root.SpanId, Named(spans, "carml.route").ParentSpanId);
        Assert.Equal(root.SpanId, Named(spans, "carml.run.record").ParentSpanId);
        Assert.Equal("iris", Named(spans, "carml.route").GetTagItem("carml.model"));
        Assert.Equal("1", Named(spans, "carml.route").GetTagItem("carml.model.version"));
        Assert.NotNull(Named(spans, "carml.run.record").GetTagItem("carml.run.id"));
        if (level == "application")
        {
            Assert.DoesNotContain(spans, s => s.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal));
            return;
        }

        var call = Named(spans, "carml.replica.infer");
        Assert.Equal(root.SpanId, call.ParentSpanId);
        Assert.Equal(ActivityKind.Client, call.Kind);
        Assert.Equal(2L, Convert.ToInt64(call.GetTagItem("carml.batch_size"), System.Globalization.CultureInfo.InvariantCulture));
        var queue = Named(spans, "carml.batch.queue");
        Assert.True(Descends(spans, queue, call), "the queue wait descends from the replica call");
        Assert.Equal("iris", queue.GetTagItem("carml.model"));
        Assert.Equal("1", queue.GetTagItem("carml.model.version"));
        Assert.Equal("CPUExecutionProvider", queue.GetTagItem("carml.execution_provider"));
        Assert.Equal("cpu", queue.GetTagItem("carml.device"));
        Assert.False(string.IsNullOrEmpty(queue.GetTagItem("carml.silo") as string));
        Assert.True((int)queue.GetTagItem("carml.batch_size")! >= 2);
        if (level == "model")
        {
            return;
        }

        var run = Named(spans, "carml.onnxruntime.run");
        Assert.Equal(queue.ParentSpanId, run.ParentSpanId);
        Assert.True(run.StartTimeUtc >= queue.StartTimeUtc + queue.Duration - TimeSpan.FromMilliseconds(1), "the run starts when the queue wait ends");
        Assert.Equal("CPUExecutionProvider", run.GetTagItem("carml.execution_provider"));
        Assert.True((int)run.GetTagItem("carml.batch_size")! >= 2);
        if (level == "framework")
        {
            Assert.Null(run.GetTagItem("carml.input.shapes"));
            return;
        }

        Assert.Equal("[2,4]", run.GetTagItem("carml.input.shapes"));
        Assert.Equal("FP32", run.GetTagItem("carml.input.datatypes"));
        Assert.True((int)run.GetTagItem("carml.batch.requests")! >= 1);
        Assert.Equal("features:[2,4]", call.GetTagItem("carml.input.shapes"));
    }

    [Theory]
    [InlineData("http")]
    [InlineData("grpc")]
    public async Task Level_none_makes_no_spans_and_returns_no_trace_id_even_under_a_sampled_parent(string protocol)
    {
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        var parent = $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01";
        if (protocol == "http")
        {
            var response = await PostAsync("none", parent);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.False(response.Headers.Contains("Carml-Trace-Id"));
        }
        else
        {
            var call = Gateway.Grpc.ModelInferAsync(KServeGrpcTests.Typed(TestModels.IrisRows.Take(2)), Metadata("none", parent), cancellationToken: Ct);
            await call.ResponseAsync;
            Assert.DoesNotContain(call.GetTrailers(), e => e.Key == "carml-trace-id");
        }

        // Another request's spans are exported after this one's would have been: none of this trace may appear.
        var marker = await InferHttpAsync("application");
        await WaitForTraceAsync(marker, [CarmlSpan("carml.run.record")]);
        Assert.Empty(fixture.Spans.OfTrace(traceId));
    }

    [Theory]
    [InlineData("http")]
    [InlineData("grpc")]
    public async Task A_clients_sampled_traceparent_becomes_the_parent_at_level_application(string protocol)
    {
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        var parentSpan = ActivitySpanId.CreateRandom().ToHexString();
        var parent = $"00-{traceId}-{parentSpan}-01";
        string answered;
        if (protocol == "http")
        {
            var response = await PostAsync(null, parent);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            answered = Assert.Single(response.Headers.GetValues("Carml-Trace-Id"));
        }
        else
        {
            var call = Gateway.Grpc.ModelInferAsync(KServeGrpcTests.Typed(TestModels.IrisRows.Take(2)), Metadata(null, parent), cancellationToken: Ct);
            await call.ResponseAsync;
            answered = call.GetTrailers().GetValue("carml-trace-id")!;
        }

        Assert.Equal(traceId, answered);
        var spans = await WaitForTraceAsync(traceId, [CarmlSpan("carml.route"), CarmlSpan("carml.run.record")]);
        var root = Assert.Single(spans, s => s.Source.Name == AspNetCoreSource);
        Assert.Equal(parentSpan, root.ParentSpanId.ToHexString());
        Assert.Equal("application", root.GetTagItem("carml.trace_level"));
        Assert.DoesNotContain(spans, s => s.OperationName == "carml.replica.infer");
    }

    [Fact]
    public async Task The_stored_run_record_carries_the_trace_id_the_client_got()
    {
        var traceId = await InferHttpAsync("model");

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var page = await (await Gateway.Http.GetAsync("/api/runs?kind=prediction&model=iris&page_size=500", Ct)).JsonAsync();
            if (page.GetProperty("runs").EnumerateArray().Any(r => r.TryGetProperty("trace_id", out var id) && id.GetString() == traceId))
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"no run record with trace id {traceId} within 30 s");
            await Task.Delay(20, Ct);
        }
    }

    [Fact]
    public async Task An_unknown_trace_level_is_a_client_error_on_both_protocols()
    {
        var response = await PostAsync("verbose", null);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("not a trace level", (await response.JsonAsync()).GetProperty("error").GetString());

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            Gateway.Grpc.ModelInferAsync(KServeGrpcTests.Typed(TestModels.IrisRows.Take(1)), Metadata("verbose", null), cancellationToken: Ct).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("not a trace level", error.Status.Detail);
    }

    [Fact]
    public async Task The_grpc_request_parameter_raises_the_level_of_one_request()
    {
        var request = KServeGrpcTests.Typed(TestModels.IrisRows.Take(2));
        request.Parameters.Add("carml_trace_level", new InferParameter { StringParam = "framework" });

        var call = Gateway.Grpc.ModelInferAsync(request, cancellationToken: Ct);
        await call.ResponseAsync;
        var traceId = call.GetTrailers().GetValue("carml-trace-id");

        Assert.NotNull(traceId);
        await WaitForTraceAsync(traceId, [CarmlSpan("carml.onnxruntime.run"), CarmlSpan("carml.run.record")]);
    }

    [Theory]
    [InlineData("model", null)]
    [InlineData("none", "full")]
    public async Task Predictor_requests_trace_pre_and_post_processing_by_the_predictors_level_or_the_requests(string predictorLevel, string? headerLevel)
    {
        await fixture.EnsureOrientationModelAsync();
        using var open = await Gateway.Http.PostAsJsonAsync(
            "/api/predictors", new { model = PredictorFixture.OrientationModelName, options = new { batch_size = 2, trace_level = predictorLevel } }, Ct);
        Assert.Equal(HttpStatusCode.Created, open.StatusCode);
        var id = (await open.JsonAsync()).GetProperty("id").GetString();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/predictors/{id}/images")
        {
            Content = JsonContent.Create(new
            {
                images = new[]
                {
                    new { id = "up", data = TextLineImages.Render("trace me", upsideDown: false) },
                    new { id = "down", data = TextLineImages.Render("trace me", upsideDown: true) },
                },
            }),
        };
        if (headerLevel is not null)
        {
            request.Headers.Add("Carml-Trace-Level", headerLevel);
        }

        using var response = await Gateway.Http.SendAsync(request, Ct);
        var body = await response.JsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        var traceId = body.GetProperty("trace_id").GetString()!;

        var spans = await WaitForTraceAsync(traceId, [CarmlSpan("carml.preprocess"), CarmlSpan("carml.postprocess"), CarmlSpan("carml.batch.queue")]);
        var root = Assert.Single(spans, s => s.Source.Name == AspNetCoreSource);
        var pre = Named(spans, "carml.preprocess");
        var post = Named(spans, "carml.postprocess");
        var call = Named(spans, "carml.replica.infer");
        Assert.Equal(root.SpanId, pre.ParentSpanId);
        Assert.Equal(root.SpanId, post.ParentSpanId);
        Assert.Equal(root.SpanId, call.ParentSpanId);
        Assert.True(pre.StartTimeUtc + pre.Duration <= call.StartTimeUtc + TimeSpan.FromMilliseconds(1), "pre-processing ends before the replica call");
        Assert.True(post.StartTimeUtc >= call.StartTimeUtc + call.Duration - TimeSpan.FromMilliseconds(1), "post-processing starts after it");
        Assert.Equal(PredictorFixture.OrientationModelName, pre.GetTagItem("carml.model"));
        Assert.Equal(2, pre.GetTagItem("carml.batch_size"));
        if (headerLevel == "full")
        {
            Assert.Equal("up,down", pre.GetTagItem("carml.input.ids"));
            Assert.Contains(spans, s => s.OperationName == "carml.onnxruntime.run");
        }
        else
        {
            Assert.Null(pre.GetTagItem("carml.input.ids"));
            Assert.DoesNotContain(spans, s => s.OperationName == "carml.onnxruntime.run");
        }
    }

    private async Task<string> InferHttpAsync(string level)
    {
        var response = await PostAsync(level, null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var traceId = Assert.Single(response.Headers.GetValues("Carml-Trace-Id"));
        Assert.StartsWith($"00-{traceId}-", Assert.Single(response.Headers.GetValues("traceresponse")));
        return traceId;
    }

    private async Task<string> InferGrpcAsync(string level)
    {
        var call = Gateway.Grpc.ModelInferAsync(KServeGrpcTests.Typed(TestModels.IrisRows.Take(2)), Metadata(level, null), cancellationToken: Ct);
        var response = await call.ResponseAsync;
        Assert.Equal("iris", response.ModelName);
        var traceId = call.GetTrailers().GetValue("carml-trace-id");
        Assert.False(string.IsNullOrEmpty(traceId), "the trailers carry carml-trace-id");
        return traceId!;
    }

    private async Task<HttpResponseMessage> PostAsync(string? level, string? traceParent)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/iris/infer")
        {
            Content = new StringContent(KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(2)), MediaTypeHeaderValue.Parse("application/json")),
        };
        if (level is not null)
        {
            request.Headers.Add("Carml-Trace-Level", level);
        }

        if (traceParent is not null)
        {
            request.Headers.Add("traceparent", traceParent);
        }

        return await Gateway.Http.SendAsync(request, Ct);
    }

    private static Metadata Metadata(string? level, string? traceParent)
    {
        var metadata = new Metadata();
        if (level is not null)
        {
            metadata.Add("carml-trace-level", level);
        }

        if (traceParent is not null)
        {
            metadata.Add("traceparent", traceParent);
        }

        return metadata;
    }

    private static Func<Activity, bool> CarmlSpan(string name) => s => s.OperationName == name;

    /// <summary>Spans are exported when they end, which may be after the client has its answer: wait for the request span and the named ones.</summary>
    private async Task<IReadOnlyList<Activity>> WaitForTraceAsync(string traceId, IReadOnlyList<Func<Activity, bool>> required)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var spans = fixture.Spans.OfTrace(traceId);
            if (spans.Any(s => s.Source.Name == AspNetCoreSource) && required.All(r => spans.Any(r)))
            {
                return spans;
            }

            Assert.True(DateTime.UtcNow < deadline,
                $"trace {traceId} incomplete after 30 s; has: {string.Join(", ", spans.Select(s => s.Source.Name + "/" + s.OperationName))}");
            await Task.Delay(20, Ct);
        }
    }

    private static Activity Named(IReadOnlyList<Activity> spans, string name) => Assert.Single(spans, s => s.OperationName == name);

    private static bool Descends(IReadOnlyList<Activity> spans, Activity span, Activity ancestor)
    {
        var byId = spans.ToDictionary(s => s.SpanId);
        for (var current = span; byId.TryGetValue(current.ParentSpanId, out var parent); current = parent)
        {
            if (parent.SpanId == ancestor.SpanId)
            {
                return true;
            }
        }

        return false;
    }
}

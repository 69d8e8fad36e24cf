using System.Globalization;
using System.Net;
using Carml.Orleans.Gateway.Observability;
using Microsoft.Extensions.DependencyInjection;

namespace Carml.Orleans.Tests.Observability;

/// <summary>Prometheus text exposition, parsed: one value per series (name plus labels).</summary>
public sealed class Scrape
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _series = [];

    public Scrape(string text)
    {
        Text = text;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var brace = line.IndexOf('{');
            var space = line.LastIndexOf('}') is var close and >= 0 ? line.IndexOf(' ', close) : line.IndexOf(' ');
            var name = brace >= 0 && brace < space ? line[..brace] : line[..space];
            var labels = new Dictionary<string, string>();
            if (brace >= 0 && brace < space)
            {
                foreach (var pair in SplitLabels(line[(brace + 1)..line.LastIndexOf('}')]))
                {
                    var eq = pair.IndexOf('=');
                    labels[pair[..eq]] = pair[(eq + 2)..^1];
                }
            }

            var value = line[(space + 1)..].Split(' ')[0];
            _series.Add((name, labels, value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(value, CultureInfo.InvariantCulture),
            }));
        }
    }

    public string Text { get; }

    public IEnumerable<string> Names => _series.Select(s => s.Name).Distinct();

    /// <summary>The sum over the series of <paramref name="name"/> whose labels include all of <paramref name="labels"/>.</summary>
    public double Sum(string name, params (string Key, string Value)[] labels) =>
        _series.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).Sum(s => s.Value);

    public bool Has(string name, params (string Key, string Value)[] labels) =>
        _series.Any(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value));

    private static IEnumerable<string> SplitLabels(string labels)
    {
        var start = 0;
        var quoted = false;
        for (var i = 0; i < labels.Length; i++)
        {
            if (labels[i] == '"' && (i == 0 || labels[i - 1] != '\\'))
            {
                quoted = !quoted;
            }
            else if (labels[i] == ',' && !quoted)
            {
                yield return labels[start..i];
                start = i + 1;
            }
        }

        if (start < labels.Length)
        {
            yield return labels[start..];
        }
    }
}

/// <summary>
/// <c>/metrics</c> in Prometheus text format, on the HTTP port and the dedicated metrics port: Carml's inference,
/// model and upload metrics move with real requests; ASP.NET Core's, Orleans' and the runtime's meters are there too.
/// </summary>
public sealed class MetricsTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private static readonly (string, string) Iris = ("model", "iris");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private GatewayInstance Gateway => fixture.Gateway;

    private Uri MetricsPort => Gateway.Services.GetRequiredService<MetricsEndpoint>().Uri ?? throw new InvalidOperationException("no metrics port");

    [Fact]
    public async Task Counters_and_histograms_move_with_predictions_over_http_and_grpc()
    {
        using var metricsClient = new HttpClient { BaseAddress = MetricsPort };
        var before = await ScrapeAsync(metricsClient);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await Gateway.Http.PostJsonAsync("/v2/models/iris/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(2)))).StatusCode);
        }

        for (var i = 0; i < 2; i++)
        {
            await Gateway.Grpc.ModelInferAsync(KServeGrpcTests.Typed(TestModels.IrisRows.Take(4)), cancellationToken: Ct);
        }

        var bad = await Gateway.Http.PostJsonAsync("/v2/models/iris/infer", """{"inputs": [{"name": "features", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        var after = await WaitForAsync(metricsClient, s =>
            s.Sum("carml_inference_requests_total", Iris, ("protocol", "grpc"), ("outcome", "success"))
                - before.Sum("carml_inference_requests_total", Iris, ("protocol", "grpc"), ("outcome", "success")) >= 2);

        Assert.True(Delta("carml_inference_requests_total", Iris, ("version", "1"), ("protocol", "http"), ("outcome", "success")) >= 3);
        Assert.True(Delta("carml_inference_requests_total", Iris, ("protocol", "http"), ("outcome", "invalid_argument")) >= 1);
        Assert.True(Delta("carml_inference_request_seconds_count", Iris, ("protocol", "grpc")) >= 2);
        Assert.True(Delta("carml_inference_request_seconds_bucket", Iris, ("protocol", "http"), ("le", "+Inf")) >= 4);
        Assert.True(Delta("carml_inference_queue_seconds_count", Iris) >= 5);
        Assert.True(Delta("carml_inference_queue_seconds_bucket", Iris, ("le", "10")) >= 5);
        Assert.True(Delta("carml_inference_compute_seconds_count", Iris) >= 1);
        Assert.True(Delta("carml_inference_compute_seconds_sum", Iris) > 0);
        Assert.True(Delta("carml_inference_batch_size_sum", Iris) >= 3 * 2 + 2 * 4, "the batch-size histogram counts every row that ran");
        Assert.True(Delta("carml_inference_batch_size_bucket", Iris, ("le", "+Inf")) >= 1);
        Assert.True(after.Has("carml_inference_in_flight"), "the in-flight gauge is exported");
        Assert.Equal(0, after.Sum("carml_inference_requests_total", ("model", "_unresolved"), ("outcome", "success")));

        // The sample model loaded at start-up: its load time and (file-size) memory are reported.
        Assert.True(after.Sum("carml_model_load_seconds_count", Iris) >= 1);
        Assert.True(after.Sum("carml_model_loaded_bytes", Iris, ("version", "1")) > 0);

        double Delta(string name, params (string, string)[] labels) => after.Sum(name, labels) - before.Sum(name, labels);
    }

    [Fact]
    public async Task AspNetCore_Orleans_and_runtime_meters_are_exported_too()
    {
        // Other gateways of this test process starting and stopping share these meters' names: keep asking, bounded.
        var scrape = await WaitForAsync(Gateway.Http, s =>
            s.Names.Any(n => n.StartsWith("http_server_request_duration_seconds", StringComparison.Ordinal))
            && s.Names.Any(n => n.StartsWith("orleans_", StringComparison.Ordinal))
            && s.Names.Any(n => n.StartsWith("dotnet_", StringComparison.Ordinal)));

        Assert.Contains(scrape.Names, n => n.StartsWith("kestrel_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Unknown_models_are_counted_under_one_label_so_clients_cannot_grow_the_series()
    {
        var name = "ghost-" + Guid.NewGuid().ToString("N");
        Assert.Equal(HttpStatusCode.NotFound, (await Gateway.Http.PostJsonAsync($"/v2/models/{name}/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)))).StatusCode);

        var scrape = await WaitForAsync(Gateway.Http, s => s.Sum("carml_inference_requests_total", ("model", "_unresolved"), ("outcome", "not_found")) >= 1);

        Assert.DoesNotContain(name, scrape.Text);
    }

    [Fact]
    public async Task Upload_bytes_are_counted()
    {
        using var metricsClient = new HttpClient { BaseAddress = MetricsPort };
        var before = (await ScrapeAsync(metricsClient)).Sum("carml_upload_bytes_total");
        var location = await TusUploadTests.CreateAsync(Gateway.Http, 3000);

        using var patch = await TusUploadTests.PatchAsync(Gateway.Http, location, 0, new byte[3000]);
        Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);

        await WaitForAsync(metricsClient, s => s.Sum("carml_upload_bytes_total") - before >= 3000);
    }

    [Fact]
    public async Task The_metrics_port_answers_metrics_and_nothing_else()
    {
        using var metricsClient = new HttpClient { BaseAddress = MetricsPort };

        Assert.Equal(HttpStatusCode.OK, (await metricsClient.GetAsync("/metrics", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await metricsClient.GetAsync("/v2/health/live", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await metricsClient.GetAsync("/api/models", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Gateway.Http.GetAsync("/metrics", Ct)).StatusCode);
    }

    private static async Task<Scrape> ScrapeAsync(HttpClient http)
    {
        using var response = await http.GetAsync("/metrics", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType ?? string.Empty);
        return new Scrape(await response.Content.ReadAsStringAsync(Ct));
    }

    /// <summary>Scrapes until <paramref name="condition"/> holds (the exporter caches a scrape for a moment), bounded.</summary>
    private static async Task<Scrape> WaitForAsync(HttpClient http, Func<Scrape, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var scrape = await ScrapeAsync(http);
            if (condition(scrape))
            {
                return scrape;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the metrics did not move within 30 s; names: {string.Join(", ", scrape.Names.Where(n => n.StartsWith("carml", StringComparison.Ordinal)))}");
            await Task.Delay(50, Ct);
        }
    }
}

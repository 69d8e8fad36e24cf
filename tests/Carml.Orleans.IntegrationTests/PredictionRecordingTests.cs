using System.Net;
using System.Text.Json;

namespace Carml.Orleans.Tests;

/// <summary>Predictions become run records off the request path when recording is on.</summary>
public sealed class PredictionRecordingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Every_prediction_is_recorded_with_shapes_timings_and_outcome_when_recording_all()
    {
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(data.Path, new Dictionary<string, string?> { ["Carml:Runs:Record"] = "all" });
        var rows = TestModels.IrisRows.Take(3);

        Assert.Equal(HttpStatusCode.OK, (await gateway.Http.PostJsonAsync("/v2/models/iris/infer", KServeHttpTests.IrisRequest(rows))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await gateway.Http.PostJsonAsync("/v2/models/iris/infer", KServeHttpTests.IrisRequest(rows.Take(1)))).StatusCode);
        var bad = await gateway.Http.PostJsonAsync("/v2/models/iris/infer", """{"inputs": [{"name": "features", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        var runs = await WaitForRunsAsync(gateway.Http, 3);

        Assert.Equal(2, runs.Count(r => r.GetProperty("status").GetString() == "succeeded"));
        var failed = runs.Single(r => r.GetProperty("status").GetString() == "failed");
        Assert.Contains("shape [1,5]", failed.GetProperty("error").GetString());
        var three = runs.Single(r => r.GetProperty("batch_size").GetInt32() == 3);
        Assert.Equal("iris", three.GetProperty("model").GetString());
        Assert.Equal([3L, 4L], three.GetProperty("inputs")[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal(48, three.GetProperty("inputs")[0].GetProperty("bytes").GetInt64());
        Assert.Equal(["probabilities", "label"], three.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
        Assert.True(three.GetProperty("timings").GetProperty("total_microseconds").GetInt64() > 0);
    }

    private static async Task<List<JsonElement>> WaitForRunsAsync(HttpClient http, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var page = await (await http.GetAsync("/api/runs?kind=prediction&model=iris", Ct)).JsonAsync();
            var runs = page.GetProperty("runs").EnumerateArray().ToList();
            if (runs.Count >= count)
            {
                return runs;
            }

            Assert.True(DateTime.UtcNow < deadline, $"only {runs.Count} of {count} prediction runs were recorded within 30 s");
            await Task.Delay(20, Ct);
        }
    }
}

using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Carml.Orleans.Tests;

[Collection(GatewayCollection.Name)]
public sealed class EvaluationTests(GatewayFixture fixture)
{
    private HttpClient Http => fixture.Gateway.Http;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<string> DatasetAsync(string name, byte[] csv)
    {
        var location = await TusUploadTests.CreateAsync(Http, csv.Length);
        using (var patch = await TusUploadTests.PatchAsync(Http, location, 0, csv))
        {
            Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
        }

        var created = await Http.PostAsJsonAsync("/api/datasets", new { name, source = new { upload = location.Split('/')[^1] } }, Ct);
        Assert.True(created.StatusCode is HttpStatusCode.Created, await created.Content.ReadAsStringAsync(Ct));
        return name;
    }

    private async Task<JsonElement> WaitForEndAsync(string id)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var run = await (await Http.GetAsync($"/api/evaluations/{id}", Ct)).JsonAsync();
            if (run.GetProperty("status").GetString() != "running")
            {
                return run;
            }

            Assert.True(DateTime.UtcNow < deadline, $"evaluation {id} still running after 60 s: {run}");
            await Task.Delay(20, Ct);
        }
    }

    [Fact]
    public async Task Iris_evaluation_matches_the_accuracy_computed_independently_and_is_searchable()
    {
        var csv = await File.ReadAllBytesAsync(RepositoryPaths.IrisCsv, Ct);
        var dataset = await DatasetAsync("iris-eval", csv);

        var started = await Http.PostAsJsonAsync("/api/evaluations", new { model = "iris", dataset, batch_size = 16, warmup = 2, repetitions = 2, labels = new { purpose = "test" } }, Ct);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var id = (await started.JsonAsync()).GetProperty("id").GetString()!;
        var run = await WaitForEndAsync(id);

        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        var result = run.GetProperty("evaluation");
        var rows = TestModels.IrisRows;
        var expected = rows.Count(r => TestModels.Iris.Model.PredictLabel(r.Features) == r.SpeciesIndex) / (double)rows.Count;
        Assert.Equal(150, result.GetProperty("samples").GetInt64());
        Assert.Equal(expected, result.GetProperty("top1_accuracy").GetDouble(), 10);
        Assert.Equal(1.0, result.GetProperty("top5_accuracy").GetDouble());
        Assert.Equal(20, result.GetProperty("batches").GetArrayLength());
        Assert.True(result.GetProperty("latency_p50_ms").GetDouble() > 0);
        Assert.True(result.GetProperty("throughput_samples_per_second").GetDouble() > 0);
        Assert.Equal(1.0, run.GetProperty("progress").GetDouble());

        var search = await (await Http.GetAsync("/api/runs?kind=evaluation&model=iris&label=purpose:test", Ct)).JsonAsync();
        Assert.Contains(id, search.GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("id").GetString()));
        var cancelFinished = await Http.PostAsync($"/api/evaluations/{id}/cancel", null, Ct);
        Assert.Equal(HttpStatusCode.Conflict, cancelFinished.StatusCode);
    }

    [Fact]
    public async Task Evaluations_compare_side_by_side_and_a_running_one_can_be_cancelled()
    {
        var dataset = await DatasetAsync("iris-compare", await File.ReadAllBytesAsync(RepositoryPaths.IrisCsv, Ct));
        var quick = (await (await Http.PostAsJsonAsync("/api/evaluations", new { model = "iris", dataset, batch_size = 50 }, Ct)).JsonAsync()).GetProperty("id").GetString()!;
        var slow = (await (await Http.PostAsJsonAsync("/api/evaluations", new { model = "iris", dataset, batch_size = 1, repetitions = 10_000 }, Ct)).JsonAsync()).GetProperty("id").GetString()!;

        var cancelled = await (await Http.PostAsync($"/api/evaluations/{slow}/cancel", null, Ct)).JsonAsync();
        await WaitForEndAsync(quick);
        var table = await (await Http.GetAsync($"/api/evaluations/compare?ids={quick},{slow}", Ct)).JsonAsync();

        Assert.Equal("cancelled", cancelled.GetProperty("status").GetString());
        Assert.Equal(2, table.GetArrayLength());
        Assert.Equal("succeeded", table[0].GetProperty("status").GetString());
        Assert.Equal(50, table[0].GetProperty("batch_size").GetInt32());
        Assert.Equal("cancelled", table[1].GetProperty("status").GetString());
    }

    public static TheoryData<string, HttpStatusCode, string> BadEvaluations => new()
    {
        { """{"model": "no-such", "dataset": "iris-bad"}""", HttpStatusCode.NotFound, "Model 'no-such' is not registered." },
        { """{"model": "iris", "dataset": "no-such-dataset"}""", HttpStatusCode.NotFound, "Dataset 'no-such-dataset' is not registered." },
        { """{"model": "iris", "dataset": "iris-bad", "batch_size": 0}""", HttpStatusCode.BadRequest, "batch_size must be between 1 and the model's max_batch_size 256, got 0" },
        { """{"model": "iris", "dataset": "iris-bad", "batch_size": 257}""", HttpStatusCode.BadRequest, "got 257" },
        { """{"model": "iris", "dataset": "iris-bad", "label_column": "colour"}""", HttpStatusCode.BadRequest, "The dataset has no label column 'colour'" },
        { """{"model": "iris", "dataset": "iris-malformed"}""", HttpStatusCode.BadRequest, "line 3: column 'sepal_width' value 'wide' is not a number" },
        { """{"model": "iris", "dataset": "iris-empty"}""", HttpStatusCode.BadRequest, "The dataset is empty" },
        { """{"model": "iris", "dataset": "iris-unknown-label"}""", HttpStatusCode.BadRequest, "line 2: label 'daisy' is neither a class index nor one of the model's labels" },
        { """{"dataset": "iris-bad"}""", HttpStatusCode.BadRequest, "model and dataset are required" },
    };

    [Theory]
    [MemberData(nameof(BadEvaluations))]
    public async Task Bad_evaluation_requests_are_refused_clearly(string json, HttpStatusCode status, string expected)
    {
        await EnsureDatasetsAsync();

        var response = await Http.PostJsonAsync("/api/evaluations", json);

        Assert.Equal(status, response.StatusCode);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("/api/evaluations/0000000000000000000000000000f", HttpStatusCode.NotFound)]
    [InlineData("/api/evaluations/nope", HttpStatusCode.NotFound)]
    [InlineData("/api/runs/nope", HttpStatusCode.NotFound)]
    [InlineData("/api/runs?status=exploded", HttpStatusCode.BadRequest)]
    [InlineData("/api/runs?label=novalue", HttpStatusCode.BadRequest)]
    [InlineData("/api/runs?page_size=0", HttpStatusCode.BadRequest)]
    [InlineData("/api/evaluations/compare?ids=one", HttpStatusCode.BadRequest)]
    public async Task Unknown_runs_and_bad_searches_are_client_errors(string path, HttpStatusCode status)
    {
        Assert.Equal(status, (await Http.GetAsync(path, Ct)).StatusCode);
    }

    private static readonly SemaphoreSlim DatasetsOnce = new(1, 1);
    private static bool _datasetsReady;

    private async Task EnsureDatasetsAsync()
    {
        await DatasetsOnce.WaitAsync(Ct);
        try
        {
            if (_datasetsReady)
            {
                return;
            }

            var header = "sepal_length,sepal_width,petal_length,petal_width,species\n";
            await DatasetAsync("iris-bad", Encoding.UTF8.GetBytes(header + "5.1,3.5,1.4,0.2,setosa\n"));
            await DatasetAsync("iris-malformed", Encoding.UTF8.GetBytes(header + "5.1,3.5,1.4,0.2,setosa\n5.1,wide,1.4,0.2,setosa\n1,2,3\n"));
            await DatasetAsync("iris-empty", Encoding.UTF8.GetBytes(header));
            await DatasetAsync("iris-unknown-label", Encoding.UTF8.GetBytes(header + "5.1,3.5,1.4,0.2,daisy\n"));
            _datasetsReady = true;
        }
        finally
        {
            DatasetsOnce.Release();
        }
    }
}

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
        var slow = (await (await Http.PostAsJsonAsync("/api/evaluations", new { model = "iris", dataset, batch_size = 1, repetitions = 5_000 }, Ct)).JsonAsync()).GetProperty("id").GetString()!;

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
        { """{"model": "", "dataset": "iris-bad"}""", HttpStatusCode.BadRequest, "model and dataset are required" },
        { """{"model": "iris", "dataset": ""}""", HttpStatusCode.BadRequest, "model and dataset are required" },
        { "", HttpStatusCode.BadRequest, "model and dataset are required" },
        { "null", HttpStatusCode.BadRequest, "model and dataset are required" },
        { "not json", HttpStatusCode.BadRequest, "'not json' is an invalid JSON literal. Expected the literal 'null'. Path: $ " },
        { """{"model": "iris", "dataset": "iris-bad" """, HttpStatusCode.BadRequest, "Failed to read parameter \"EvaluationRequestDto request\" from the request body as JSON" },
        { "[]", HttpStatusCode.BadRequest, "could not be converted to Carml.Orleans.Gateway.Management.EvaluationRequestDto. Path: $" },
        { """{"model": 5, "dataset": "iris-bad"}""", HttpStatusCode.BadRequest, "Path: $.model" },
        { """{"model": "iris", "dataset": "iris-bad", "batch_size": "two"}""", HttpStatusCode.BadRequest, "Path: $.batch_size" },
        { """{"model": "iris", "dataset": "iris-bad", "batch_size": 1.5}""", HttpStatusCode.BadRequest, "Path: $.batch_size" },
        { """{"model": "iris", "dataset": "iris-bad", "batch_size": 99999999999}""", HttpStatusCode.BadRequest, "Path: $.batch_size" },
        { """{"model": "iris", "dataset": "iris-bad", "labels": {"purpose": 1}}""", HttpStatusCode.BadRequest, "Path: $.labels.purpose" },
        { """{"model": "iris", "dataset": "iris-bad", "labels": ["purpose"]}""", HttpStatusCode.BadRequest, "Path: $.labels" },
        { """{"model": "iris", "dataset": "iris-bad", "warmup": -1}""", HttpStatusCode.BadRequest, "warmup must be 0 to 10000 and repetitions 1 to 10000" },
        { """{"model": "iris", "dataset": "iris-bad", "repetitions": 0}""", HttpStatusCode.BadRequest, "warmup must be 0 to 10000 and repetitions 1 to 10000" },
        { """{"model": "iris", "dataset": "iris-bad", "repetitions": 2147483647}""", HttpStatusCode.BadRequest, "warmup must be 0 to 10000 and repetitions 1 to 10000" },
        { """{"model": "iris", "dataset": "iris-bad", "warmup": 2147483647}""", HttpStatusCode.BadRequest, "warmup must be 0 to 10000 and repetitions 1 to 10000" },
        { """{"model": "iris", "dataset": "iris-full", "batch_size": 1, "repetitions": 10000}""", HttpStatusCode.BadRequest, "rows in batches of 1 × 10000 repetitions is" },
        { """{"model": "iris", "dataset": "iris-bad", "version": "99"}""", HttpStatusCode.NotFound, "Model 'iris' has no version '99'" },
        { """{"model": "iris", "dataset": "iris-bad", "output": "nope"}""", HttpStatusCode.BadRequest, "Model 'iris' has no output 'nope'" },
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

    public static TheoryData<string, HttpStatusCode, string> BadLookupsAndSearches => new()
    {
        { "/api/evaluations/0000000000000000000000000000f", HttpStatusCode.NotFound, "There is no evaluation 0000000000000000000000000000f" },
        { "/api/evaluations/nope", HttpStatusCode.NotFound, "There is no evaluation nope" },
        { "/api/runs/nope", HttpStatusCode.NotFound, "There is no run nope" },
        { "/api/runs?status=exploded", HttpStatusCode.BadRequest, "status 'exploded' is not one of running, succeeded, failed, cancelled" },
        { "/api/runs?status=", HttpStatusCode.BadRequest, "status '' is not one of" },
        { "/api/runs?status=1", HttpStatusCode.BadRequest, "status '1' is not one of" },
        { "/api/runs?status=succeeded,failed", HttpStatusCode.BadRequest, "status 'succeeded,failed' is not one of" },
        { "/api/runs?status=running&status=failed", HttpStatusCode.BadRequest, "status 'running,failed' is not one of" },
        { "/api/runs?kind=training", HttpStatusCode.BadRequest, "kind 'training' is not one of prediction, evaluation" },
        { "/api/runs?kind=0", HttpStatusCode.BadRequest, "kind '0' is not one of" },
        { "/api/runs?label=novalue", HttpStatusCode.BadRequest, "label 'novalue' must be key:value" },
        { "/api/runs?label=:orphan", HttpStatusCode.BadRequest, "label ':orphan' must be key:value" },
        { "/api/runs?label=", HttpStatusCode.BadRequest, "label '' must be key:value" },
        { "/api/runs?page_size=0", HttpStatusCode.BadRequest, "page_size must be between 1 and 500, got 0" },
        { "/api/runs?page_size=-1", HttpStatusCode.BadRequest, "page_size must be between 1 and 500, got -1" },
        { "/api/runs?page_size=501", HttpStatusCode.BadRequest, "page_size must be between 1 and 500, got 501" },
        { "/api/runs?page_size=abc", HttpStatusCode.BadRequest, "Query parameter 'page_size' must be a whole number, not 'abc'." },
        { "/api/runs?page_size=99999999999", HttpStatusCode.BadRequest, "Query parameter 'page_size' must be a whole number, not '99999999999'." },
        { "/api/runs?page_size=1&page_size=2", HttpStatusCode.BadRequest, "Query parameter 'page_size' must be a whole number, not '1,2'." },
        { "/api/runs?page_token=abc", HttpStatusCode.BadRequest, "page_token 'abc' is not a token this server issued" },
        { "/api/runs?page_token=%25%25%25", HttpStatusCode.BadRequest, "page_token '%%%' is not a token this server issued" },
        { "/api/runs?page_token=", HttpStatusCode.BadRequest, "page_token '' is not a token this server issued" },
        { "/api/runs?from=notadate", HttpStatusCode.BadRequest, "Query parameter 'from' must be a date and time (ISO 8601" },
        { "/api/runs?from=2024-13-45", HttpStatusCode.BadRequest, "Query parameter 'from' must be a date and time (ISO 8601, e.g. 2026-11-23T18:00:00Z), not '2024-13-45'." },
        { "/api/runs?to=yesterday", HttpStatusCode.BadRequest, "Query parameter 'to' must be a date and time (ISO 8601, e.g. 2026-11-23T18:00:00Z), not 'yesterday'." },
        { "/api/runs?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z", HttpStatusCode.BadRequest, "from must not be after to" },
        { "/api/evaluations/compare?ids=one", HttpStatusCode.BadRequest, "Give two or more evaluation ids: ids=a,b." },
        { "/api/evaluations/compare", HttpStatusCode.BadRequest, "Give two or more evaluation ids" },
        { "/api/evaluations/compare?ids=,,,", HttpStatusCode.BadRequest, "Give two or more evaluation ids" },
        { "/api/evaluations/compare?ids=nope,other", HttpStatusCode.NotFound, "There is no evaluation nope" },
    };

    [Theory]
    [MemberData(nameof(BadLookupsAndSearches))]
    public async Task Unknown_runs_and_bad_searches_are_client_errors_naming_the_problem(string path, HttpStatusCode status, string expected)
    {
        using var response = await Http.GetAsync(path, Ct);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Wrong_method_on_evaluations_is_405_naming_the_allowed_one()
    {
        using var response = await Http.PutAsync("/api/evaluations", new StringContent("{}", Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Contains("PUT is not allowed on /api/evaluations; allowed: POST", (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Cancelling_an_unknown_evaluation_is_not_found()
    {
        using var response = await Http.PostAsync("/api/evaluations/nope/cancel", null, Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("There is no evaluation nope", (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("text/plain", "Content-Type 'text/plain; charset=utf-8' is not accepted by POST /api/evaluations: send application/json")]
    [InlineData("application/x-www-form-urlencoded", "Content-Type 'application/x-www-form-urlencoded; charset=utf-8' is not accepted")]
    public async Task Evaluation_body_that_is_not_json_is_unsupported_media_type(string contentType, string expected)
    {
        using var response = await Http.PostAsync("/api/evaluations", new StringContent("model=iris&dataset=iris-bad", Encoding.UTF8, contentType), Ct);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
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
            await DatasetAsync("iris-full", await File.ReadAllBytesAsync(RepositoryPaths.IrisCsv, Ct));
            _datasetsReady = true;
        }
        finally
        {
            DatasetsOnce.Release();
        }
    }
}

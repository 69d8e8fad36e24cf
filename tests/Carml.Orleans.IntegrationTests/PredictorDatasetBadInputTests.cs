using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using SkiaSharp;

namespace Carml.Orleans.Tests;

/// <summary>
/// Every kind of bad value the predictor API's dataset call can be sent over REST, each answered with the right 4xx
/// and a message that names the mistake. Runs on the tabular model, so it needs neither npm nor the PP-OCR model.
/// </summary>
[Collection(PredictorCollection.Name)]
public sealed class PredictorDatasetBadInputTests(PredictorFixture fixture)
{
    /// <summary>Two PNGs in folders, as an image dataset is laid out.</summary>
    private const string Images = "bad-input-images";

    /// <summary>A CSV: a dataset with no image files.</summary>
    private const string Table = "bad-input-table";

    private static readonly SemaphoreSlim DatasetsOnce = new(1, 1);
    private static bool _datasetsReady;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private HttpClient Http => fixture.Gateway.Http;

    public static TheoryData<string, HttpStatusCode, string> BadDatasetRequests => new()
    {
        { "{}", HttpStatusCode.BadRequest, "dataset is required: the name of a registered dataset." },
        { "", HttpStatusCode.BadRequest, "dataset is required" },
        { """{"dataset": ""}""", HttpStatusCode.BadRequest, "dataset is required" },
        { $$"""{"dataset": "{{Images}}", "offset": -1}""", HttpStatusCode.BadRequest, "offset and limit must not be negative" },
        { $$"""{"dataset": "{{Images}}", "limit": -5}""", HttpStatusCode.BadRequest, "offset and limit must not be negative" },
        { $$"""{"dataset": "{{Images}}", "offset": 2}""", HttpStatusCode.BadRequest, "offset 2 is past the dataset's 2 images" },
        { $$"""{"dataset": "{{Images}}", "offset": 2147483647}""", HttpStatusCode.BadRequest, "offset 2147483647 is past the dataset's 2 images" },
        { """{"dataset": "no-such-dataset"}""", HttpStatusCode.NotFound, "Dataset 'no-such-dataset' is not registered." },
        { """{"dataset": "../../etc/passwd"}""", HttpStatusCode.NotFound, "Dataset '../../etc/passwd' is not registered." },
        { $$"""{"dataset": "{{Table}}"}""", HttpStatusCode.BadRequest, $"Dataset '{Table}' has no image files (.png" },
        { $$"""{"dataset": "{{Images}}", "offset": "first"}""", HttpStatusCode.BadRequest, "Path: $.offset" },
        { $$"""{"dataset": "{{Images}}", "limit": 1e12}""", HttpStatusCode.BadRequest, "Path: $.limit" },
        { """{"dataset": 5}""", HttpStatusCode.BadRequest, "Path: $.dataset" },
        { """{"dataset": ["a", "b"]}""", HttpStatusCode.BadRequest, "Path: $.dataset" },
        { """{"dataset": """, HttpStatusCode.BadRequest, "Failed to read parameter \"DatasetRequestDto request\" from the request body as JSON" },
        { $$"""{"dataset": "{{Images}}"}""", HttpStatusCode.BadRequest, $"has no input of type: image" },
    };

    [Theory]
    [MemberData(nameof(BadDatasetRequests))]
    public async Task Bad_dataset_prediction_requests_are_client_errors_naming_the_problem(string json, HttpStatusCode status, string expected)
    {
        await EnsureDatasetsAsync();
        var id = await OpenAsync();

        using var response = await Http.PostJsonAsync($"/api/predictors/{id}/dataset", json);

        Assert.Equal(status, response.StatusCode);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("0123456789abcdef0123456789abcdef")]
    [InlineData("not-a-predictor")]
    public async Task Dataset_prediction_on_an_unknown_predictor_is_not_found(string id)
    {
        await EnsureDatasetsAsync();

        using var response = await Http.PostAsJsonAsync($"/api/predictors/{id}/dataset", new { dataset = Images }, Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains(id, (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Dataset_request_that_is_not_json_is_unsupported_media_type()
    {
        var id = await OpenAsync();

        using var response = await Http.PostAsync($"/api/predictors/{id}/dataset", new StringContent($"dataset={Images}", Encoding.UTF8, "text/plain"), Ct);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Contains("Content-Type 'text/plain; charset=utf-8' is not accepted", (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    private async Task<string> OpenAsync()
    {
        using var response = await Http.PostAsJsonAsync("/api/predictors", new { model = PredictorFixture.TabularModelName }, Ct);
        var body = await response.JsonAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body.ToString());
        return body.GetProperty("id").GetString()!;
    }

    private async Task EnsureDatasetsAsync()
    {
        await DatasetsOnce.WaitAsync(Ct);
        try
        {
            if (_datasetsReady)
            {
                return;
            }

            using var zip = new MemoryStream();
            using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
            {
                foreach (var (name, color) in new[] { ("red/a.png", SKColors.Red), ("blue/b.png", SKColors.Blue) })
                {
                    await using var entry = archive.CreateEntry(name).Open();
                    await entry.WriteAsync(TestImages.SolidPng(8, 8, color), Ct);
                }
            }

            var zipBytes = zip.ToArray();
            await using var server = await LocalWebServer.StartAsync(app =>
            {
                app.MapGet("/images.zip", () => Results.Bytes(zipBytes, "application/zip"));
                app.MapGet("/table.csv", () => Results.Text("a,b,label\n1,2,x\n", "text/csv"));
            });
            foreach (var (name, file) in new[] { (Images, "images.zip"), (Table, "table.csv") })
            {
                using var registered = await Http.PostAsJsonAsync("/api/datasets", new { name, source = new { url = server.Url(file) } }, Ct);
                Assert.True(registered.StatusCode == HttpStatusCode.Created, await registered.Content.ReadAsStringAsync(Ct));
            }

            _datasetsReady = true;
        }
        finally
        {
            DatasetsOnce.Release();
        }
    }
}

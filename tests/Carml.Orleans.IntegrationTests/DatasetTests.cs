using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Text;

namespace Carml.Orleans.Tests;

[Collection(GatewayCollection.Name)]
public sealed class DatasetTests(GatewayFixture fixture)
{
    private HttpClient Http => fixture.Gateway.Http;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<string> UploadAsync(byte[] bytes, string filename)
    {
        var location = await TusUploadTests.CreateAsync(Http, bytes.Length, "filename " + Convert.ToBase64String(Encoding.UTF8.GetBytes(filename)) + ",kind ZGF0YXNldA==");
        using var patch = await TusUploadTests.PatchAsync(Http, location, 0, bytes);
        Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
        return location.Split('/')[^1];
    }

    [Fact]
    public async Task Csv_uploaded_with_tus_becomes_a_dataset()
    {
        var csv = await File.ReadAllBytesAsync(RepositoryPaths.IrisCsv, Ct);
        var upload = await UploadAsync(csv, "iris.csv");

        var created = await Http.PostAsJsonAsync("/api/datasets", new { name = "iris-csv", description = "Fisher's Iris", source = new { upload } }, Ct);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var dataset = await (await Http.GetAsync("/api/datasets/iris-csv", Ct)).JsonAsync();
        Assert.Equal(csv.Length, dataset.GetProperty("size_bytes").GetInt64());
        Assert.Equal(0, dataset.GetProperty("file_count").GetInt32());
        Assert.Contains("iris-csv", (await (await Http.GetAsync("/api/datasets", Ct)).JsonAsync()).EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Archive_dataset_is_unpacked_and_listed()
    {
        using var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var name in new[] { "images/0/a.png", "images/1/b.png", "labels.txt" })
            {
                using var entry = archive.CreateEntry(name).Open();
                entry.Write(Encoding.UTF8.GetBytes(name));
            }
        }

        var upload = await UploadAsync(zip.ToArray(), "images.zip");

        var created = await Http.PostAsJsonAsync("/api/datasets", new { name = "images", source = new { upload } }, Ct);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var dataset = await created.JsonAsync();
        Assert.Equal(["images/0/a.png", "images/1/b.png", "labels.txt"], dataset.GetProperty("files").EnumerateArray().Select(f => f.GetString()));
    }

    [Fact]
    public async Task Deleted_dataset_is_404_and_another_registration_under_its_name_conflicts_until_then()
    {
        var first = await UploadAsync("a,b\n1,2\n"u8.ToArray(), "one.csv");
        var second = await UploadAsync("a,b\n3,4\n"u8.ToArray(), "two.csv");
        Assert.Equal(HttpStatusCode.Created, (await Http.PostAsJsonAsync("/api/datasets", new { name = "temp", source = new { upload = first } }, Ct)).StatusCode);

        var conflict = await Http.PostAsJsonAsync("/api/datasets", new { name = "temp", source = new { upload = second } }, Ct);
        var deleted = await Http.DeleteAsync("/api/datasets/temp", Ct);

        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync("/api/datasets/temp", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.DeleteAsync("/api/datasets/temp", Ct)).StatusCode);
    }

    [Theory]
    [InlineData("""{"source": {"sha256": "00"}}""", "name is required")]
    [InlineData("""{"name": "x y", "source": {"url": "http://127.0.0.1:1/a"}}""", "name is required")]
    [InlineData("""{"name": "two", "source": {"url": "http://127.0.0.1:1/a", "upload": "0123456789abcdef0123456789abcdef"}}""", "exactly one of upload, url or sha256")]
    [InlineData("""{"name": "none"}""", "exactly one of upload, url or sha256")]
    [InlineData("""{"name": "gone", "source": {"upload": "0123456789abcdef0123456789abcdef"}}""", "is not an upload this server knows")]
    [InlineData("""{"name": "nosuch", "source": {"sha256": "0000000000000000000000000000000000000000000000000000000000000000"}}""", "is not in the artifact store")]
    [InlineData("""{"name": 5""", "Failed to read parameter \"DatasetRegistrationDto registration\" from the request body as JSON. '5' is an invalid end of a number. Expected a delimiter. Path: $.name")]
    public async Task Bad_dataset_registrations_are_400(string json, string expected)
    {
        var response = await Http.PostJsonAsync("/api/datasets", json);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
    }
}

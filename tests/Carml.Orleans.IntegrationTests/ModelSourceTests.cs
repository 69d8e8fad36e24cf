using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Carml.Orleans.Tests;

/// <summary>Models registered from URLs and archives (sent, uploaded with tus, or downloaded).</summary>
[Collection(GatewayCollection.Name)]
public sealed class ModelSourceTests(GatewayFixture fixture) : IAsyncDisposable
{
    private readonly Dictionary<string, byte[]> _files = new();
    private WebApplication? _server;
    private Uri? _address;

    private HttpClient Http => fixture.Gateway.Http;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.StopAsync();
            await _server.DisposeAsync();
        }
    }

    private async Task<string> ServeAsync(string name, byte[] content)
    {
        _files[name] = content;
        if (_server is null)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
            _server = builder.Build();
            _server.MapGet("/{name}", (string name) => _files.TryGetValue(name, out var bytes) ? Results.Bytes(bytes) : Results.NotFound());
            await _server.StartAsync(Ct);
            _address = new Uri(_server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        }

        return new Uri(_address!, name).ToString();
    }

    private static string Manifest(string name, string source) =>
        TestModels.IrisManifest(name, "1").Replace("  path: iris.onnx", source, StringComparison.Ordinal);

    private Task<HttpResponseMessage> RegisterAsync(string manifest) =>
        Http.PostAsync("/api/models", new StringContent(manifest, Encoding.UTF8, "application/yaml"), Ct);

    private async Task AssertServesIrisAsync(string name)
    {
        var rows = TestModels.IrisRows.Take(3).ToArray();
        var body = await (await Http.PostJsonAsync($"/v2/models/{name}/infer", KServeHttpTests.IrisRequest(rows))).JsonAsync();
        var labels = body.GetProperty("outputs")[1].GetProperty("data").EnumerateArray().Select(e => e.GetInt64());
        Assert.Equal(rows.Select(r => (long)TestModels.Iris.Model.PredictLabel(r.Features)), labels);
    }

    private static byte[] TarGz(params (string Name, byte[] Data)[] entries)
    {
        using var tar = new MemoryStream();
        using (var writer = new System.Formats.Tar.TarWriter(tar, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
            {
                writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
            }
        }

        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(tar.ToArray());
        }

        return output.ToArray();
    }

    [Fact]
    public async Task Model_from_a_url_with_a_checksum_serves_predictions()
    {
        var url = await ServeAsync("iris.onnx", TestModels.Iris.OnnxBytes);
        var checksum = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(TestModels.Iris.OnnxBytes));

        var response = await RegisterAsync(Manifest("from-url", $"  url: {url}\n  checksum: {checksum}"));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        await AssertServesIrisAsync("from-url");
    }

    [Fact]
    public async Task Model_inside_a_downloaded_archive_is_found_by_archive_path()
    {
        var url = await ServeAsync("bundle.tar.gz", TarGz(("bundle/iris.onnx", TestModels.Iris.OnnxBytes), ("bundle/other.onnx", TestModels.TypedModel()), ("bundle/README", "hi"u8.ToArray())));

        var ambiguous = await RegisterAsync(Manifest("from-archive", $"  url: {url}"));
        var chosen = await RegisterAsync(Manifest("from-archive", $"  url: {url}\n  archive_path: bundle/iris.onnx"));

        Assert.Equal(HttpStatusCode.BadRequest, ambiguous.StatusCode);
        Assert.Contains("holds 2 .onnx files; choose one with source.archive_path", (await ambiguous.JsonAsync()).GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.Created, chosen.StatusCode);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(TestModels.Iris.OnnxBytes)), (await chosen.JsonAsync()).GetProperty("artifact").GetProperty("sha256").GetString());
        await AssertServesIrisAsync("from-archive");
    }

    [Fact]
    public async Task Model_in_an_archive_uploaded_with_tus_serves_predictions()
    {
        var archive = TarGz(("model.onnx", TestModels.Iris.OnnxBytes));
        var location = await TusUploadTests.CreateAsync(Http, archive.Length, "filename bW9kZWwudGFyLmd6");
        using (var patch = await TusUploadTests.PatchAsync(Http, location, 0, archive))
        {
            Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
        }

        var response = await RegisterAsync(Manifest("tus-archive", $"  upload: {location.Split('/')[^1]}"));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        await AssertServesIrisAsync("tus-archive");
    }

    [Fact]
    public async Task Zip_sent_with_the_manifest_is_unpacked()
    {
        using var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var entry = archive.CreateEntry("m/iris.onnx").Open();
            entry.Write(TestModels.Iris.OnnxBytes);
        }

        var response = await Http.PostAsync("/api/models", ModelRegistration.Multipart(TestModels.IrisManifest("zipped", "1"), zip.ToArray()), Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        await AssertServesIrisAsync("zipped");
    }

    [Theory]
    [InlineData("missing", "answered 404")]
    [InlineData("checksum", "not the expected")]
    [InlineData("slip", "points outside the extraction directory")]
    [InlineData("not-in-archive", "is not in the archive")]
    public async Task Bad_url_or_archive_sources_are_400_and_store_nothing(string mistake, string expected)
    {
        string source;
        switch (mistake)
        {
            case "missing":
                await ServeAsync("placeholder", [0]);
                source = $"  url: {new Uri(_address!, "nothing-here.onnx")}";
                break;
            case "checksum":
                source = $"  url: {await ServeAsync("iris-bad.onnx", TestModels.Iris.OnnxBytes)}\n  checksum: md5:{new string('1', 32)}";
                break;
            case "slip":
                source = $"  url: {await ServeAsync("slip.tar.gz", TarGz(("../../evil.onnx", TestModels.Iris.OnnxBytes)))}";
                break;
            default:
                source = $"  url: {await ServeAsync("ok.tar.gz", TarGz(("a.onnx", TestModels.Iris.OnnxBytes)))}\n  archive_path: b.onnx";
                break;
        }

        var response = await RegisterAsync(Manifest($"bad-source-{mistake}", source));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync($"/api/models/bad-source-{mistake}", Ct)).StatusCode);
    }

    [Fact]
    public async Task Two_sources_at_once_are_refused()
    {
        var response = await RegisterAsync(Manifest("two-sources", $"  url: http://127.0.0.1:1/x.onnx\n  upload: {new string('a', 32)}"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("source: give one of sha256, upload or url", (await response.JsonAsync()).GetProperty("problems").EnumerateArray().Select(p => p.GetString()));
    }
}

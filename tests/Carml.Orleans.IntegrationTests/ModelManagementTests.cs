using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Carml.Orleans.Gateway.KServe.Grpc;
using Google.Protobuf;

namespace Carml.Orleans.Tests;

[Collection(GatewayCollection.Name)]
public sealed class ModelManagementTests(GatewayFixture fixture)
{
    private HttpClient Http => fixture.Gateway.Http;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Registered_model_is_ready_and_described()
    {
        var body = await ModelRegistration.RegisterAsync(Http, TestModels.IrisManifest("reg-iris", "3"), TestModels.Iris.OnnxBytes);

        Assert.Equal("reg-iris", body.GetProperty("name").GetString());
        Assert.Equal("3", body.GetProperty("version").GetString());
        Assert.Equal("ready", body.GetProperty("state").GetString());
        Assert.Equal("CPUExecutionProvider", body.GetProperty("execution_provider").GetString());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(TestModels.Iris.OnnxBytes)), body.GetProperty("artifact").GetProperty("sha256").GetString());
        var fetched = await (await Http.GetAsync("/api/models/reg-iris/versions/3", Ct)).JsonAsync();
        Assert.Equal(body.GetProperty("registered_at").GetString(), fetched.GetProperty("registered_at").GetString());
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync("/v2/models/reg-iris/versions/3/ready", Ct)).StatusCode);
    }

    [Fact]
    public async Task Every_common_datatype_round_trips_over_http_and_grpc()
    {
        await ModelRegistration.RegisterAsync(Http, TestModels.TypedManifest("typed"), TestModels.TypedModel());
        var json = """
            {"inputs": [
              {"name": "f64", "shape": [2, 2], "datatype": "FP64", "data": [[1.5, -2.25], [1e300, 0]]},
              {"name": "i32", "shape": [2], "datatype": "INT32", "data": [2147483646, -7]},
              {"name": "i64", "shape": [2], "datatype": "INT64", "data": [9007199254740993, -3]},
              {"name": "u8", "shape": [2, 3], "datatype": "UINT8", "data": [0, 1, 255, 7, 8, 9]},
              {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [true, false]}]}
            """;

        var body = await (await Http.PostJsonAsync("/v2/models/typed/infer", json)).JsonAsync();

        string Data(string name) => body.GetProperty("outputs").EnumerateArray()
            .Single(o => o.GetProperty("name").GetString() == name).GetProperty("data").GetRawText();
        Assert.Equal("[3,-4.5,2E+300,0]", Data("f64_out"));
        Assert.Equal("[2147483647,-6]", Data("i32_out"));
        Assert.Equal("[-9007199254740993,3]", Data("i64_out"));
        Assert.Equal("[0,1,255,7,8,9]", Data("u8_out"));
        Assert.Equal("[false,true]", Data("flag_out"));

        var request = new ModelInferRequest { ModelName = "typed" };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "f64", Datatype = "FP64", Shape = { 1, 2 }, Contents = new() { Fp64Contents = { 0.5, 4 } } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "i32", Datatype = "INT32", Shape = { 1 }, Contents = new() { IntContents = { 41 } } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "i64", Datatype = "INT64", Shape = { 1 }, Contents = new() { Int64Contents = { long.MaxValue } } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "u8", Datatype = "UINT8", Shape = { 1, 3 }, Contents = new() { UintContents = { 3, 2, 1 } } });
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "flag", Datatype = "BOOL", Shape = { 1 }, Contents = new() { BoolContents = { false } } });

        var response = await fixture.Gateway.Grpc.ModelInferAsync(request, cancellationToken: Ct);

        byte[] Raw(string name) => response.RawOutputContents[response.Outputs.ToList().FindIndex(o => o.Name == name)].ToByteArray();
        Assert.Equal([1.0, 8.0], System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(Raw("f64_out")).ToArray());
        Assert.Equal(42, BitConverter.ToInt32(Raw("i32_out")));
        Assert.Equal(-long.MaxValue, BitConverter.ToInt64(Raw("i64_out")));
        Assert.Equal([3, 2, 1], Raw("u8_out"));
        Assert.Equal([1], Raw("flag_out"));
        Assert.Equal("BOOL", response.Outputs.Single(o => o.Name == "flag_out").Datatype);
    }

    [Fact]
    public async Task Out_of_range_and_missing_inputs_are_400()
    {
        await ModelRegistration.RegisterAsync(Http, TestModels.TypedManifest("typed-bad"), TestModels.TypedModel());

        var outOfRange = await Http.PostJsonAsync("/v2/models/typed-bad/infer", """
            {"inputs": [{"name": "u8", "shape": [1, 3], "datatype": "UINT8", "data": [1, 2, 256]}]}
            """);
        var missing = await Http.PostJsonAsync("/v2/models/typed-bad/infer", """
            {"inputs": [{"name": "u8", "shape": [1, 3], "datatype": "UINT8", "data": [1, 2, 3]}]}
            """);

        Assert.Equal(HttpStatusCode.BadRequest, outOfRange.StatusCode);
        Assert.Contains("element 2 (256) is not a UINT8 integer (0 to 255)", (await outOfRange.JsonAsync()).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        var error = (await missing.JsonAsync()).GetProperty("error").GetString();
        Assert.Contains("missing input 'f64' (FP64 [-1,2])", error);
        Assert.Contains("missing input 'flag' (BOOL [-1])", error);
    }

    [Fact]
    public async Task Latest_resolves_to_the_highest_version_for_metadata_and_inference()
    {
        foreach (var version in new[] { "2", "10", "9" })
        {
            await ModelRegistration.RegisterAsync(Http, TestModels.IrisManifest("multi", version), TestModels.Iris.OnnxBytes);
        }

        var summary = await (await Http.GetAsync("/api/models/multi/versions", Ct)).JsonAsync();
        var latest = await (await Http.GetAsync("/api/models/multi/versions/latest", Ct)).JsonAsync();
        var inferred = await (await Http.PostJsonAsync("/v2/models/multi/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)))).JsonAsync();
        var pinned = await (await Http.PostJsonAsync("/v2/models/multi/versions/9/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)))).JsonAsync();

        Assert.Equal(["2", "9", "10"], summary.GetProperty("versions").EnumerateArray().Select(v => v.GetString()));
        Assert.Equal("10", summary.GetProperty("latest").GetString());
        Assert.Equal("10", latest.GetProperty("version").GetString());
        Assert.Equal("10", inferred.GetProperty("model_version").GetString());
        Assert.Equal("9", pinned.GetProperty("model_version").GetString());
    }

    [Fact]
    public async Task List_is_paginated_in_name_order()
    {
        foreach (var name in new[] { "page-c", "page-a", "page-b" })
        {
            await ModelRegistration.RegisterAsync(Http, TestModels.IrisManifest(name, "1"), TestModels.Iris.OnnxBytes);
        }

        var names = new List<string>();
        string? token = null;
        var pages = 0;
        do
        {
            var path = "/api/models?page_size=2" + (token is null ? string.Empty : $"&page_token={token}");
            var page = await (await Http.GetAsync(path, Ct)).JsonAsync();
            var models = page.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()!).ToList();
            Assert.True(models.Count <= 2);
            names.AddRange(models);
            token = page.GetProperty("next_page_token").GetString();
            pages++;
        }
        while (token is not null && pages < 100);

        var mine = names.Where(n => n.StartsWith("page-", StringComparison.Ordinal)).ToList();
        Assert.Equal(["page-a", "page-b", "page-c"], mine);
        Assert.Equal(names.Order(StringComparer.Ordinal), names);
        Assert.Equal(names.Distinct(), names);
    }

    [Theory]
    [InlineData("page_size=0", "page_size must be between 1 and ")]
    [InlineData("page_size=5000", "got 5000")]
    [InlineData("page_token=%25%25%25", "page_token '%%%' is not a token this server issued")]
    [InlineData("page_token=abc", "page_token 'abc' is not a token this server issued")]
    [InlineData("page_size=abc", "Query parameter 'page_size' must be a whole number, not 'abc'.")]
    public async Task Bad_paging_parameters_are_400(string query, string expected)
    {
        var response = await Http.GetAsync($"/api/models?{query}", Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Deleted_model_is_gone_everywhere()
    {
        await ModelRegistration.RegisterAsync(Http, TestModels.IrisManifest("doomed", "1"), TestModels.Iris.OnnxBytes);
        Assert.Equal(HttpStatusCode.OK, (await Http.PostJsonAsync("/v2/models/doomed/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)))).StatusCode);

        var deleted = await Http.DeleteAsync("/api/models/doomed/versions/1", Ct);
        var again = await Http.DeleteAsync("/api/models/doomed/versions/1", Ct);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync("/api/models/doomed/versions/1", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync("/v2/models/doomed", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.PostJsonAsync("/v2/models/doomed/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)))).StatusCode);
    }

    [Fact]
    public async Task Same_registration_twice_is_accepted_and_a_different_one_conflicts()
    {
        await ModelRegistration.RegisterAsync(Http, TestModels.IrisManifest("twice", "1"), TestModels.Iris.OnnxBytes);
        await ModelRegistration.RegisterAsync(Http, TestModels.IrisManifest("twice", "1"), TestModels.Iris.OnnxBytes);

        var conflict = await Http.PostAsync("/api/models", ModelRegistration.Multipart(
            TestModels.IrisManifest("twice", "1").Replace("max_batch_size: 256", "max_batch_size: 8", StringComparison.Ordinal),
            TestModels.Iris.OnnxBytes), Ct);

        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Contains("already registered", (await conflict.JsonAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Invalid_manifest_is_400_listing_every_problem_and_stores_nothing()
    {
        var model = TestModels.TypedModel().Concat(Encoding.UTF8.GetBytes("unique-1")).ToArray();
        var manifest = """
            name: "bad/name"
            version: "1"
            framework: pytorch
            inputs:
              - {name: x, datatype: FLOAT, shape: [-1]}
            outputs: []
            """;

        var response = await Http.PostAsync("/api/models", ModelRegistration.Multipart(manifest, model), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problems = (await response.JsonAsync()).GetProperty("problems").EnumerateArray().Select(p => p.GetString()!).ToList();
        Assert.Contains(problems, p => p.Contains("name 'bad/name'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("framework 'pytorch' is not supported", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("datatype 'FLOAT'", StringComparison.Ordinal));
        await AssertNotStoredAsync(model);
    }

    [Fact]
    public async Task Model_file_disagreeing_with_manifest_is_400_listing_every_mismatch_and_stores_nothing()
    {
        var manifest = TestModels.TypedManifest("mismatch")
            .Replace("{name: f64, datatype: FP64, shape: [-1, 2]}", "{name: f64, datatype: FP32, shape: [-1, 3]}", StringComparison.Ordinal)
            .Replace("{name: flag_out, datatype: BOOL, shape: [-1]}", "{name: missing_out, datatype: BOOL, shape: [-1]}", StringComparison.Ordinal);
        var model = TestModels.TypedModel($"mismatch_{Guid.NewGuid():N}");

        var response = await Http.PostAsync("/api/models", ModelRegistration.Multipart(manifest, model), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problems = (await response.JsonAsync()).GetProperty("problems").EnumerateArray().Select(p => p.GetString()!).ToList();
        Assert.Contains("input 'f64': the manifest says FP32, the model file has Double", problems);
        Assert.Contains(problems, p => p.StartsWith("output 'missing_out' is not in the model file", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync("/api/models/mismatch/versions/1", Ct)).StatusCode);
        await AssertNotStoredAsync(model);
    }

    [Fact]
    public async Task A_file_that_is_not_onnx_is_400_and_not_stored()
    {
        var junk = Encoding.UTF8.GetBytes("definitely not an onnx model " + Guid.NewGuid());

        var response = await Http.PostAsync("/api/models", ModelRegistration.Multipart(TestModels.IrisManifest("junk", "1"), junk), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("not a loadable ONNX model", (await response.JsonAsync()).GetProperty("detail").GetString());
        await AssertNotStoredAsync(junk);
    }

    [Fact]
    public async Task Manifest_can_name_a_stored_artifact_instead_of_sending_the_file()
    {
        var stored = await Http.PostAsync("/api/artifacts", new ByteArrayContent(TestModels.Iris.OnnxBytes), Ct);
        Assert.Equal(HttpStatusCode.Created, stored.StatusCode);
        var sha = (await stored.JsonAsync()).GetProperty("sha256").GetString();
        var manifest = TestModels.IrisManifest("by-sha", "1").Replace("  path: iris.onnx", $"  sha256: {sha}", StringComparison.Ordinal);

        var response = await Http.PostAsync("/api/models", new StringContent(manifest, Encoding.UTF8, "application/yaml"), Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(sha, (await response.JsonAsync()).GetProperty("artifact").GetProperty("sha256").GetString());
    }

    [Theory]
    [InlineData("  sha256: 0000000000000000000000000000000000000000000000000000000000000000", "is not in the artifact store")]
    [InlineData("  path: iris.onnx", "is on your machine, not the server's")]
    public async Task Manifest_without_a_usable_file_is_400(string source, string expected)
    {
        var manifest = TestModels.IrisManifest("no-file", "1").Replace("  path: iris.onnx", source, StringComparison.Ordinal);

        var response = await Http.PostAsync("/api/models", new StringContent(manifest, Encoding.UTF8, "application/yaml"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Multipart_without_manifest_or_with_unknown_parts_is_400()
    {
        var noManifest = new MultipartFormDataContent { { new ByteArrayContent([1, 2, 3]), "model", "m.onnx" } };
        var unknown = ModelRegistration.Multipart(TestModels.IrisManifest("parts", "1"), TestModels.Iris.OnnxBytes);
        unknown.Add(new StringContent("x"), "weights");

        var first = await Http.PostAsync("/api/models", noManifest, Ct);
        var second = await Http.PostAsync("/api/models", unknown, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, first.StatusCode);
        Assert.Contains("no 'manifest' part", (await first.JsonAsync()).GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, second.StatusCode);
        Assert.Contains("Unknown multipart part 'weights'", (await second.JsonAsync()).GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("--x\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\nname: a")]
    [InlineData("no boundary line at all")]
    public async Task A_truncated_or_malformed_multipart_body_is_400(string body)
    {
        using var content = new StringContent(body);
        content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("multipart/form-data; boundary=x");

        using var response = await Http.PostAsync("/api/models", content, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Unknown_model_and_artifact_are_404_problem_details()
    {
        var model = await Http.GetAsync("/api/models/nothing-here", Ct);
        var artifact = await Http.GetAsync($"/api/artifacts/{new string('f', 64)}", Ct);

        Assert.Equal(HttpStatusCode.NotFound, model.StatusCode);
        Assert.Equal("application/problem+json", model.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, artifact.StatusCode);
    }

    [Fact]
    public async Task OpenApi_document_lists_the_management_api()
    {
        var document = await (await Http.GetAsync("/openapi/v1.json", Ct)).JsonAsync();

        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/api/models", paths);
        Assert.Contains("/api/models/{name}/versions/{version}", paths);
    }

    [Fact]
    public async Task OpenApi_has_a_browsable_page()
    {
        var page = await Http.GetAsync("/docs/v1", Ct);

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("openapi/v1.json", await page.Content.ReadAsStringAsync(Ct));
    }

    private async Task AssertNotStoredAsync(byte[] model)
    {
        var sha = Convert.ToHexStringLower(SHA256.HashData(model));
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync($"/api/artifacts/{sha}", Ct)).StatusCode);
    }
}

[Collection(GatewayCollection.Name)]
public sealed class AgentApiTests(GatewayFixture fixture)
{
    [Fact]
    public async Task The_standalone_silo_reports_itself_as_an_agent()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        System.Text.Json.JsonElement agents;
        while (true)
        {
            agents = await (await fixture.Gateway.Http.GetAsync("/api/agents", TestContext.Current.CancellationToken)).JsonAsync();
            if (agents.GetArrayLength() > 0)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, "no agent reported within 30 s");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        var agent = agents[0];
        Assert.Equal("cpu", agent.GetProperty("accelerator").GetString());
        Assert.False(agent.GetProperty("stale").GetBoolean());
        var record = agent.GetProperty("agent");
        Assert.Equal(Environment.ProcessorCount, record.GetProperty("cpu_cores").GetInt32());
        Assert.Contains("CPUExecutionProvider", record.GetProperty("execution_providers").EnumerateArray().Select(e => e.GetString()));
        Assert.False(string.IsNullOrEmpty(record.GetProperty("frameworks").GetProperty("onnxruntime").GetString()));
        var id = Uri.EscapeDataString(record.GetProperty("id").GetString()!);
        Assert.Equal(HttpStatusCode.OK, (await fixture.Gateway.Http.GetAsync($"/api/agents/{id}", TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Gateway.Http.GetAsync("/api/agents/nobody", TestContext.Current.CancellationToken)).StatusCode);
    }
}

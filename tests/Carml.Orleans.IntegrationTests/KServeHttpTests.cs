using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Carml.Orleans.Onnx.Iris;

namespace Carml.Orleans.Tests;

[Collection(GatewayCollection.Name)]
public sealed class KServeHttpTests(GatewayFixture fixture)
{
    private HttpClient Http => fixture.Gateway.Http;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static IReadOnlyList<IrisSample> Rows => IrisDataset.Load(RepositoryPaths.IrisCsv).Samples;

    [Fact]
    public async Task Health_endpoints_report_live_and_ready()
    {
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync("/v2/health/live", Ct)).StatusCode);
        var ready = await Http.GetAsync("/v2/health/ready", Ct);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.True((await ready.JsonAsync()).GetProperty("ready").GetBoolean());
    }

    [Fact]
    public async Task Healthz_reports_every_component_ok_with_its_latency()
    {
        var response = await Http.GetAsync("/healthz", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var health = await response.JsonAsync();
        Assert.Equal("ok", health.GetProperty("status").GetString());
        var components = health.GetProperty("components");
        foreach (var name in new[] { "startup", "cluster_and_grain_storage", "run_store" })
        {
            Assert.Equal("ok", components.GetProperty(name).GetProperty("status").GetString());
        }
    }

    [Fact]
    public async Task Server_metadata_names_the_server_and_its_extensions()
    {
        var metadata = await (await Http.GetAsync("/v2", Ct)).JsonAsync();

        Assert.Equal("carml-orleans", metadata.GetProperty("name").GetString());
        Assert.False(string.IsNullOrEmpty(metadata.GetProperty("version").GetString()));
        Assert.Contains("binary_tensor_data", metadata.GetProperty("extensions").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Sample_model_metadata_describes_its_tensors()
    {
        foreach (var path in new[] { "/v2/models/iris", "/v2/models/iris/versions/1" })
        {
            var response = await Http.GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var metadata = await response.JsonAsync();
            Assert.Equal("iris", metadata.GetProperty("name").GetString());
            Assert.Equal(["1"], metadata.GetProperty("versions").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal("onnxruntime_onnx", metadata.GetProperty("platform").GetString());
            var input = metadata.GetProperty("inputs")[0];
            Assert.Equal("features", input.GetProperty("name").GetString());
            Assert.Equal("FP32", input.GetProperty("datatype").GetString());
            Assert.Equal([-1L, 4L], input.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
            Assert.Equal(["probabilities", "label"], metadata.GetProperty("outputs").EnumerateArray().Select(e => e.GetProperty("name").GetString()));
        }
    }

    [Fact]
    public async Task Model_ready_is_200_for_a_loaded_model()
    {
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync("/v2/models/iris/ready", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync("/v2/models/iris/versions/1/ready", Ct)).StatusCode);
    }

    [Theory]
    [InlineData("/v2/models/no-such-model")]
    [InlineData("/v2/models/iris/versions/99")]
    [InlineData("/v2/models/no-such-model/ready")]
    [InlineData("/v2/models/iris/versions/99/ready")]
    public async Task Unknown_model_or_version_is_404_with_an_error(string path)
    {
        var response = await Http.GetAsync(path, Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = (await response.JsonAsync()).GetProperty("error").GetString();
        Assert.Matches("^Model '(no-such-model' is not registered|iris' has no version '99')\\.$", error);
    }

    [Fact]
    public async Task Infer_on_unknown_model_is_404()
    {
        var response = await Http.PostJsonAsync("/v2/models/nope/infer", IrisRequest(Rows.Take(1)));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("Model 'nope' is not registered.", (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Json_infer_matches_softmax_regression_computed_in_plain_csharp_for_all_150_rows()
    {
        var rows = Rows;
        var response = await Http.PostJsonAsync("/v2/models/iris/infer", IrisRequest(rows, nested: true, id: "req-1"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.JsonAsync();
        Assert.Equal("iris", body.GetProperty("model_name").GetString());
        Assert.Equal("1", body.GetProperty("model_version").GetString());
        Assert.Equal("req-1", body.GetProperty("id").GetString());
        var probabilities = Output(body, "probabilities");
        Assert.Equal([rows.Count, 3L], probabilities.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        var values = probabilities.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        var labels = Output(body, "label").GetProperty("data").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var correct = 0;
        for (var r = 0; r < rows.Count; r++)
        {
            var expected = TestModels.Iris.Model.PredictProbabilities(rows[r].Features);
            for (var c = 0; c < 3; c++)
            {
                Assert.Equal(expected[c], values[(r * 3) + c], 1e-5f);
            }

            Assert.Equal(TestModels.Iris.Model.PredictLabel(rows[r].Features), labels[r]);
            correct += labels[r] == rows[r].SpeciesIndex ? 1 : 0;
        }

        Assert.True(correct >= 140, $"only {correct} of 150 rows classified correctly");
    }

    [Fact]
    public async Task Flat_json_data_is_accepted_and_requested_outputs_are_the_only_ones_returned()
    {
        var json = """
            {"inputs": [{"name": "features", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}],
             "outputs": [{"name": "label"}]}
            """;

        var body = await (await Http.PostJsonAsync("/v2/models/iris/infer", json)).JsonAsync();

        var output = Assert.Single(body.GetProperty("outputs").EnumerateArray());
        Assert.Equal("label", output.GetProperty("name").GetString());
        Assert.Equal([0L, 2L], output.GetProperty("data").EnumerateArray().Select(e => e.GetInt64()));
    }

    [Fact]
    public async Task Binary_tensor_extension_round_trips_inputs_and_outputs()
    {
        var rows = Rows.Take(3).ToArray();
        var input = new byte[rows.Length * 16];
        for (var i = 0; i < rows.Length; i++)
        {
            for (var f = 0; f < 4; f++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(input.AsSpan((i * 16) + (f * 4)), rows[i].Features[f]);
            }
        }

        var header = Encoding.UTF8.GetBytes($$$"""
            {"inputs": [{"name": "features", "shape": [3, 4], "datatype": "FP32", "parameters": {"binary_data_size": {{{input.Length}}}}}],
             "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}, {"name": "label", "parameters": {"binary_data": false}}]}
            """);
        var content = new ByteArrayContent([.. header, .. input]);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.Add("Inference-Header-Content-Length", header.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));

        var response = await Http.PostAsync("/v2/models/iris/infer", content, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var jsonLength = int.Parse(response.Headers.GetValues("Inference-Header-Content-Length").Single(), System.Globalization.CultureInfo.InvariantCulture);
        var bytes = await response.Content.ReadAsByteArrayAsync(Ct);
        var json = JsonDocument.Parse(bytes.AsMemory(0, jsonLength)).RootElement;
        var probabilities = Output(json, "probabilities");
        Assert.Equal(36, probabilities.GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.False(probabilities.TryGetProperty("data", out _));
        Assert.Equal(jsonLength + 36, bytes.Length);
        for (var i = 0; i < rows.Length; i++)
        {
            var expected = TestModels.Iris.Model.PredictProbabilities(rows[i].Features);
            for (var c = 0; c < 3; c++)
            {
                Assert.Equal(expected[c], BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(jsonLength + (((i * 3) + c) * 4))), 1e-5f);
            }
        }

        Assert.Equal([0L, 0L, 0L], Output(json, "label").GetProperty("data").EnumerateArray().Select(e => e.GetInt64()));
    }

    [Fact]
    public async Task Binary_data_output_parameter_makes_every_output_binary()
    {
        var json = """{"parameters": {"binary_data_output": true}, "inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}""";

        var response = await Http.PostJsonAsync("/v2/models/iris/infer", json);

        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
        var length = int.Parse(response.Headers.GetValues("Inference-Header-Content-Length").Single(), System.Globalization.CultureInfo.InvariantCulture);
        var bytes = await response.Content.ReadAsByteArrayAsync(Ct);
        Assert.Equal(length + 12 + 8, bytes.Length);
        Assert.Equal(0L, BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(length + 12)));
    }

    public static TheoryData<string, string> BadRequests => new()
    {
        { """{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}""", "input 'features': datatype FP64 does not match the model's FP32" },
        { """{"inputs": [{"name": "features", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]}""", "input 'features': shape [1,5] does not match the model's [-1,4] at dimension 1" },
        { """{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]}""", "input 'features': 3 values in data do not match its shape (4 expected)" },
        { """{"inputs": [{"name": "other", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}""", "unknown input 'other'" },
        { """{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}, {"name": "extra", "shape": [1], "datatype": "FP32", "data": [1]}]}""", "unknown input 'extra'" },
        { """{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, "x", 4]}]}""", "input 'features': element 2 (\"x\") is not a FP32 number" },
        { """{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FLOAT", "data": [1, 2, 3, 4]}]}""", "input 'features': datatype 'FLOAT' is not a KServe v2 datatype" },
        { """{"inputs": []}""", "The request's 'inputs' array is empty." },
        { """{"outputs": []}""", "The request needs an 'inputs' array." },
        { """{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "outputs": [{"name": "nope"}]}""", "unknown output 'nope'" },
        { """{"inputs": [{"name": "features", "shape": [1, -4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}""", "shape dimension 1 (-4) is not a non-negative integer" },
        { """{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]""", "The request is not valid JSON" },
        { "[1, 2]", "The request must be a JSON object" },
        { """{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "outputs": ["label"]}""", "'outputs' items must be objects" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_infer_request_is_400_naming_the_problem(string json, string expected)
    {
        var response = await Http.PostJsonAsync("/v2/models/iris/infer", json);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Batch_larger_than_max_batch_size_is_400()
    {
        var rows = Enumerable.Repeat(Rows[0], 257);

        var response = await Http.PostJsonAsync("/v2/models/iris/infer", IrisRequest(rows));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("batch size 257 exceeds the model's max_batch_size 256", (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Empty_body_is_400()
    {
        var response = await Http.PostAsync("/v2/models/iris/infer", new ByteArrayContent([]), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("The request body is empty", (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("5000", "Inference-Header-Content-Length is 5000, but it must be between 1 and the body length")]
    [InlineData("abc", "Inference-Header-Content-Length 'abc' is not a non-negative integer")]
    [InlineData("10", "The request is not valid JSON")]
    public async Task Bad_binary_header_length_is_400(string headerLength, string expected)
    {
        var content = new StringContent("""{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}""");
        content.Headers.Add("Inference-Header-Content-Length", headerLength);

        var response = await Http.PostAsync("/v2/models/iris/infer", content, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Binary_data_size_past_the_end_of_the_body_is_400()
    {
        var header = Encoding.UTF8.GetBytes("""{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}""");
        var content = new ByteArrayContent([.. header, .. new byte[8]]);
        content.Headers.Add("Inference-Header-Content-Length", header.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));

        var response = await Http.PostAsync("/v2/models/iris/infer", content, Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("binary_data_size 16 runs past the end of the body", (await response.JsonAsync()).GetProperty("error").GetString());
    }

    internal static string IrisRequest(IEnumerable<IrisSample> rows, bool nested = false, string? id = null)
    {
        var list = rows.ToList();
        var data = nested
            ? "[" + string.Join(",", list.Select(r => "[" + string.Join(",", r.Features.Select(F)) + "]")) + "]"
            : "[" + string.Join(",", list.SelectMany(r => r.Features).Select(F)) + "]";
        var idPart = id is null ? string.Empty : $"\"id\": \"{id}\", ";
        return $$"""{{{idPart}}"inputs": [{"name": "features", "shape": [{{list.Count}}, 4], "datatype": "FP32", "data": {{data}}}]}""";
    }

    private static string F(float value) => value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    private static JsonElement Output(JsonElement body, string name) =>
        body.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("name").GetString() == name);
}

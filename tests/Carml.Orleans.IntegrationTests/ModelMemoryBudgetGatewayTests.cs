using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Carml.Orleans.Tests;

/// <summary>
/// A gateway whose silo's model memory budget holds two of three Iris models: the least recently used idle one is
/// unloaded to make room, and reloads when a request needs it again; the agent status shows what is loaded.
/// </summary>
public sealed class ModelMemoryBudgetGatewayTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<IReadOnlyList<string>> LoadedAsync(HttpClient http, Func<JsonElement, bool> until, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var agents = await (await http.GetAsync("/api/agents", Ct)).JsonAsync();
            var agent = agents.EnumerateArray().Single().GetProperty("agent");
            if (until(agent))
            {
                return agent.GetProperty("loaded_replicas").EnumerateArray().Select(r => r.GetProperty("replica").GetString()!).Order(StringComparer.Ordinal).ToArray();
            }

            Assert.True(DateTime.UtcNow < deadline, $"Waited 60 s for {what}; the agent reports {agent}");
            await Task.Delay(100, Ct);
        }
    }

    private static async Task<JsonElement> ModelAsync(HttpClient http, string name, Func<JsonElement, bool> until, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var model = await (await http.GetAsync($"/api/models/{name}/versions/1", Ct)).JsonAsync();
            if (until(model))
            {
                return model;
            }

            Assert.True(DateTime.UtcNow < deadline, $"Waited 60 s for {what}; the model is {model}");
            await Task.Delay(100, Ct);
        }
    }

    private static bool Holds(JsonElement agent, params string[] replicas) =>
        agent.GetProperty("loaded_replicas").EnumerateArray().Select(r => r.GetProperty("replica").GetString()).Order(StringComparer.Ordinal).SequenceEqual(replicas);

    [Fact]
    public async Task The_least_recently_used_idle_model_is_unloaded_to_make_room_and_reloads_on_demand()
    {
        // Each replica is charged the file size times the factor (2): the budget holds two, not three.
        var charge = 2L * TestModels.Iris.OnnxBytes.Length;
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(data.Path, new Dictionary<string, string?>
        {
            ["Carml:SampleModel:Enabled"] = "false",
            ["Carml:Silo:ModelMemoryBudgetBytes"] = (charge * 5 / 2).ToString(CultureInfo.InvariantCulture),
        });
        var evictionsBefore = await EvictionsAsync(gateway.Http);
        var request = KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1));
        foreach (var name in new[] { "mem-a", "mem-b", "mem-c" })
        {
            await ModelRegistration.RegisterAsync(gateway.Http, TestModels.IrisManifest(name, "1"), TestModels.Iris.OnnxBytes);
            using var predicted = await gateway.Http.PostJsonAsync($"/v2/models/{name}/infer", request);
            Assert.Equal(HttpStatusCode.OK, predicted.StatusCode);
        }

        var loaded = await LoadedAsync(gateway.Http, a => Holds(a, "mem-b/1/0", "mem-c/1/0"), "mem-a to be evicted");
        var a = await ModelAsync(gateway.Http, "mem-a", m => m.GetProperty("replicas")[0].GetProperty("state").GetString() == "registered", "mem-a to report its replica unloaded");

        Assert.Equal(["mem-b/1/0", "mem-c/1/0"], loaded);
        Assert.Equal("ready", a.GetProperty("state").GetString());
        Assert.Equal("registered", a.GetProperty("replicas")[0].GetProperty("state").GetString());
        Assert.Contains("memory budget", a.GetProperty("replicas")[0].GetProperty("reason").GetString());

        using var again = await gateway.Http.PostJsonAsync("/v2/models/mem-a/infer", request);
        var body = await again.JsonAsync();

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var probabilities = body.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("name").GetString() == "probabilities")
            .GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var expected = TestModels.Iris.Model.PredictProbabilities(TestModels.IrisRows[0].Features);
        Assert.Equal(expected.Length, probabilities.Length);
        for (var c = 0; c < expected.Length; c++)
        {
            Assert.Equal(expected[c], probabilities[c], 1e-5f);
        }

        // mem-b was the least recently used idle replica when mem-a came back.
        await LoadedAsync(gateway.Http, agent => Holds(agent, "mem-a/1/0", "mem-c/1/0")
            && agent.GetProperty("model_evictions").GetInt64() == 2
            && agent.GetProperty("model_memory_used_bytes").GetInt64() == 2 * charge
            && agent.GetProperty("model_memory_budget_bytes").GetInt64() == charge * 5 / 2, "mem-a to be back and mem-b evicted");
        var b = await ModelAsync(gateway.Http, "mem-b", m => m.GetProperty("replicas")[0].GetProperty("state").GetString() == "registered", "mem-b to report its replica unloaded");
        var aAgain = await ModelAsync(gateway.Http, "mem-a", m => m.GetProperty("replicas")[0].GetProperty("state").GetString() == "ready", "mem-a to report its replica reloaded");
        Assert.Equal("ready", b.GetProperty("state").GetString());
        Assert.Equal("CPUExecutionProvider", aAgain.GetProperty("replicas")[0].GetProperty("execution_provider").GetString());

        // The evictions are metrics too: the counter is process-wide, so it must have grown by this test's two.
        var evictions = 0.0;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (evictions < evictionsBefore + 2)
        {
            evictions = await EvictionsAsync(gateway.Http);
            Assert.True(evictions >= evictionsBefore + 2 || DateTime.UtcNow < deadline, $"Waited 30 s for carml_model_evictions_total to grow by 2 from {evictionsBefore}; it is {evictions}");
        }
    }

    private static async Task<double> EvictionsAsync(HttpClient http)
    {
        var scrape = await http.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
        var line = scrape.Split('\n').FirstOrDefault(l => l.StartsWith("carml_model_evictions_total", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}

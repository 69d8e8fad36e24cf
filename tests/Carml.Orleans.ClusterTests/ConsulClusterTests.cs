using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Carml.Orleans.Onnx.Iris;

namespace Carml.Orleans.ClusterTests;

/// <summary>
/// Cluster mode with real processes on 127.0.0.1: the Consul emulator, two silos clustered through the Consul
/// membership provider, and a gateway that is an Orleans client finding them in Consul.
/// </summary>
public sealed class ConsulClusterTests() : ClusterTest("cluster")
{
    private static readonly TimeSpan CatalogTimeout = TimeSpan.FromSeconds(30);


    [Fact]
    public async Task Two_silos_and_a_gateway_clustered_through_consul_serve_predictions_and_survive_a_silo_stopping()
    {
        var consul = await StartEmulatorAsync();
        var silo1 = StartSilo("silo-1", consul);
        var silo2 = StartSilo("silo-2", consul);
        var silo1Id = (await silo1.WaitForLineAsync(@"Registered carml-silo as (\S+)", StartTimeout)).Groups[1].Value;
        var silo2Id = (await silo2.WaitForLineAsync(@"Registered carml-silo as (\S+)", StartTimeout)).Groups[1].Value;
        await WaitForServicesAsync(consul, "carml-silo", passingOnly: true, ids => ids.Count == 2, "both silos are passing in the catalog");

        var gateway = (await StartGatewayAsync(consul)).Http;

        // Register a model through the gateway, as a user would; the silos load it from the shared store.
        await RegisterIrisAsync(gateway, "iris-cluster");
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(0L, await PredictAsync(gateway, "iris-cluster"));
        }

        var silos = await ServicesAsync(consul, "carml-silo", passingOnly: true);
        Assert.Equal(new[] { silo1Id, silo2Id }.Order(), silos.Select(s => s.Id).Order());
        Assert.All(silos, s => Assert.Contains("@", s.Meta["silo_address"]));
        await WaitForServicesAsync(consul, "carml-gateway", passingOnly: true, ids => ids.Count == 1, "the ready gateway is passing in the catalog");
        Assert.Equal(2, (await KeysAsync(consul, "carml/orleans/carml/members/")).Count);
        await WaitForKeysAsync(consul, "carml/models/", keys => keys.Contains("carml/models/iris-cluster/1"), "the gateway publishes the model in the registry");
        Assert.Equal(2, (await KeysAsync(consul, "carml/agents/carml-silo/")).Count);

        // The management API works through the cluster client too: both silos report as agents, runs can be searched.
        await WaitForJsonArrayAsync(new Uri(gateway, "api/agents"), count => count == 2, "both silos appear in /api/agents");
        using (var runs = await Http.GetAsync(new Uri(gateway, "api/runs"), Ct))
        {
            Assert.True(runs.StatusCode == HttpStatusCode.OK, $"/api/runs answered {(int)runs.StatusCode}: {await runs.Content.ReadAsStringAsync(Ct)}");
        }

        // Stop the silo that holds the model's loaded replica (the hard case): a graceful stop deregisters it, and the
        // cluster keeps serving on the other silo, where the replica is activated again from the shared store.
        var (stopped, kept, keptId) = silo1.Output.Contains("Replica iris-cluster/1/0 loaded", StringComparison.Ordinal)
            ? (silo1, silo2, silo2Id)
            : (silo2, silo1, silo1Id);
        Assert.Equal(0, await stopped.StopGracefullyAsync(TimeSpan.FromSeconds(60)));
        var remaining = await WaitForServicesAsync(consul, "carml-silo", passingOnly: false, ids => ids.Count == 1, "the stopped silo is deregistered");
        Assert.Equal([keptId], remaining);
        await PredictEventuallyAsync(gateway, "iris-cluster", TimeSpan.FromSeconds(60));
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(0L, await PredictAsync(gateway, "iris-cluster"));
        }

        // Consul unreachable: serving goes on; when it returns (as a restarted agent that forgot its services) the
        // processes register again.
        await PostAsync(consul, "emulator/faults/unreachable");
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(0L, await PredictAsync(gateway, "iris-cluster"));
        }

        await PostAsync(consul, "emulator/agent/restart");
        await PostAsync(consul, "emulator/faults/clear");
        await WaitForServicesAsync(consul, "carml-silo", passingOnly: true, ids => ids.SequenceEqual([keptId]), "the silo registers again after the agent restart");
        Assert.False(kept.HasExited);
        await WaitForServicesAsync(consul, "carml-gateway", passingOnly: true, ids => ids.Count == 1, "the gateway registers again after the agent restart");
        Assert.Equal(0L, await PredictAsync(gateway, "iris-cluster"));
    }

    [Fact]
    public async Task Without_a_reachable_silo_the_gateway_is_not_ready_and_its_consul_check_goes_critical()
    {
        var consul = await StartEmulatorAsync();
        var silo = StartSilo("only-silo", consul);
        await silo.WaitForLineAsync(@"Registered carml-silo as (\S+)", StartTimeout);
        var gateway = (await StartGatewayAsync(consul)).Http;
        await WaitForServicesAsync(consul, "carml-gateway", passingOnly: true, ids => ids.Count == 1, "the ready gateway is passing in the catalog");
        using (var healthy = await Http.GetAsync(new Uri(gateway, "healthz"), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        }

        Assert.Equal(0, await silo.StopGracefullyAsync(TimeSpan.FromSeconds(60)));

        // KServe readiness, /healthz and the catalog check all say the gateway cannot serve; liveness stays up.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            using var ready = await Http.GetAsync(new Uri(gateway, "v2/health/ready"), Ct);
            if (ready.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"/v2/health/ready still answers {(int)ready.StatusCode} 60 s after the last silo stopped");
            await Task.Delay(100, Ct);
        }

        using (var healthz = await Http.GetAsync(new Uri(gateway, "healthz"), Ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, healthz.StatusCode);
            using var body = JsonDocument.Parse(await healthz.Content.ReadAsStringAsync(Ct));
            Assert.Equal("failing", body.RootElement.GetProperty("components").GetProperty("cluster_and_grain_storage").GetProperty("status").GetString());
        }

        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync(new Uri(gateway, "v2/health/live"), Ct)).StatusCode);
        await WaitForServicesAsync(consul, "carml-gateway", passingOnly: true, ids => ids.Count == 0, "the gateway's TTL check goes critical");
        var raw = await Http.GetStringAsync(new Uri(consul, "v1/health/service/carml-gateway"), Ct);
        Assert.True((await ServicesAsync(consul, "carml-gateway", passingOnly: false)).Count == 1, raw + "\n" + Outputs());
    }

    [Fact]
    public async Task A_cluster_on_postgresql_keeps_its_models_across_a_full_restart()
    {
        await using var postgres = new Carml.Orleans.Tests.PostgresServer();
        await postgres.InitializeAsync();
        postgres.SkipIfUnavailable();
        var database = ("Carml__Postgres__ConnectionString", await postgres.CreateDatabaseAsync());
        var consul = await StartEmulatorAsync();

        var silo = StartSilo("pg-silo-1", consul, database);
        await silo.WaitForLineAsync(@"Registered carml-silo as (\S+)", StartTimeout);
        var gateway = (await StartGatewayAsync(consul, database)).Http;
        await RegisterIrisAsync(gateway, "iris-pg");
        Assert.Equal(0L, await PredictAsync(gateway, "iris-pg"));
        foreach (var process in Processes.Where(p => !p.HasExited && p != Processes[0]).Reverse().ToList())
        {
            Assert.Equal(0, await process.StopGracefullyAsync(TimeSpan.FromSeconds(60)));
        }

        // Grain state went to PostgreSQL, not to the SQLite file of the shared directory.
        Assert.False(File.Exists(Path.Combine(DataDirectory, "carml.db")), "cluster mode with a connection string must not write the SQLite grain store");
        await using (var connection = new Npgsql.NpgsqlConnection(database.Item2))
        {
            await connection.OpenAsync(Ct);
            await using var rows = new Npgsql.NpgsqlCommand("SELECT count(*) FROM orleansstorage", connection);
            Assert.True((long)(await rows.ExecuteScalarAsync(Ct))! >= 2, "the model and catalog grains' state is in orleansstorage");
        }

        StartSilo("pg-silo-2", consul, database);
        var restarted = (await StartGatewayAsync(consul, database)).Http;
        await PredictEventuallyAsync(restarted, "iris-pg", TimeSpan.FromSeconds(60));
        Assert.Equal(0L, await PredictAsync(restarted, "iris-pg"));
    }

    [Fact]
    public async Task A_cluster_silo_fails_fast_with_a_clear_message_when_consul_is_unreachable()
    {
        var address = new Uri($"http://127.0.0.1:{FreePort()}/");
        var silo = StartSilo("silo-without-consul", address, ("Carml__Consul__Clustering__StartupTimeout", "00:00:02"));
        var clock = Stopwatch.StartNew();

        var exitCode = await WaitForExitAsync(silo, TimeSpan.FromSeconds(60));

        Assert.True(exitCode != 0, $"The silo exited with 0.\n{silo.Output}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60));
        Assert.Contains("carml silo: Cannot start", silo.Output);
        Assert.Contains("not reachable within 2 s", silo.Output);
        Assert.Contains(address.ToString(), silo.Output);
    }

    [Fact]
    public async Task A_silo_with_an_unknown_mode_exits_naming_the_setting()
    {
        var silo = StartSilo("silo-bad-mode", new Uri("http://127.0.0.1:1/"), ("Carml__Mode", "clustered"));

        var exitCode = await WaitForExitAsync(silo, TimeSpan.FromSeconds(60));

        Assert.Equal(2, exitCode);
        Assert.Contains("carml silo: Carml:Mode is 'clustered'; use 'standalone' or 'cluster'.", silo.Output);
    }

    /// <summary>One setosa row through KServe v2 HTTP; returns the predicted label.</summary>
    private async Task<long> PredictAsync(Uri gateway, string model)
    {
        const string request = """{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}""";
        using var response = await Http.PostAsync(new Uri(gateway, $"v2/models/{model}/infer"), new StringContent(request, Encoding.UTF8, "application/json"), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"Inference answered {(int)response.StatusCode}: {body}\n{Outputs()}");
        var label = JsonDocument.Parse(body).RootElement.GetProperty("outputs").EnumerateArray().Single(o => o.GetProperty("name").GetString() == "label");
        return label.GetProperty("data")[0].GetInt64();
    }

    /// <summary>After a silo leaves, grains it hosted are re-activated on the other: allow that, within a bound.</summary>
    private async Task PredictEventuallyAsync(Uri gateway, string model, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                Assert.Equal(0L, await PredictAsync(gateway, model));
                return;
            }
            catch (Exception e) when (e is Xunit.Sdk.XunitException or HttpRequestException && deadline.Elapsed < timeout)
            {
                await Task.Delay(250, Ct);
            }
        }
    }

    private async Task<IReadOnlyList<string>> WaitForServicesAsync(Uri consul, string service, bool passingOnly, Func<IReadOnlyList<string>, bool> done, string what)
    {
        var deadline = Stopwatch.StartNew();
        IReadOnlyList<string> ids = [];
        while (deadline.Elapsed < CatalogTimeout)
        {
            ids = (await ServicesAsync(consul, service, passingOnly)).Select(s => s.Id).Order(StringComparer.Ordinal).ToArray();
            if (done(ids))
            {
                return ids;
            }

            await Task.Delay(100, Ct);
        }

        throw new TimeoutException($"Within {CatalogTimeout.TotalSeconds} s: {what} (catalog has {string.Join(", ", ids)}).\n{Outputs()}");
    }

    private async Task<IReadOnlyList<(string Id, Dictionary<string, string> Meta)>> ServicesAsync(Uri consul, string service, bool passingOnly)
    {
        var body = await Http.GetStringAsync(new Uri(consul, $"v1/health/service/{service}{(passingOnly ? "?passing" : string.Empty)}"), Ct);
        return JsonDocument.Parse(body).RootElement.EnumerateArray()
            .Select(e => e.GetProperty("Service"))
            .Select(s => (s.GetProperty("ID").GetString()!, s.GetProperty("Meta").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!)))
            .ToArray();
    }

    private async Task<IReadOnlyList<string>> KeysAsync(Uri consul, string prefix)
    {
        using var response = await Http.GetAsync(new Uri(consul, $"v1/kv/{prefix}?keys"), Ct);
        return response.StatusCode == HttpStatusCode.NotFound
            ? []
            : JsonSerializer.Deserialize<string[]>(await response.Content.ReadAsStringAsync(Ct)) ?? [];
    }

    private async Task WaitForJsonArrayAsync(Uri address, Func<int, bool> done, string what)
    {
        var deadline = Stopwatch.StartNew();
        var last = string.Empty;
        while (deadline.Elapsed < CatalogTimeout)
        {
            using var response = await Http.GetAsync(address, Ct);
            last = await response.Content.ReadAsStringAsync(Ct);
            if (response.StatusCode == HttpStatusCode.OK && JsonDocument.Parse(last).RootElement is { ValueKind: JsonValueKind.Array } array && done(array.GetArrayLength()))
            {
                return;
            }

            await Task.Delay(100, Ct);
        }

        throw new TimeoutException($"Within {CatalogTimeout.TotalSeconds} s: {what} (last answer: {last}).\n{Outputs()}");
    }

    private async Task WaitForKeysAsync(Uri consul, string prefix, Func<IReadOnlyList<string>, bool> done, string what)
    {
        var deadline = Stopwatch.StartNew();
        IReadOnlyList<string> keys = [];
        while (deadline.Elapsed < CatalogTimeout)
        {
            keys = await KeysAsync(consul, prefix);
            if (done(keys))
            {
                return;
            }

            await Task.Delay(100, Ct);
        }

        throw new TimeoutException($"Within {CatalogTimeout.TotalSeconds} s: {what} (keys: {string.Join(", ", keys)}).\n{Outputs()}");
    }

    private async Task PostAsync(Uri consul, string path)
    {
        using var response = await Http.PostAsync(new Uri(consul, path), null, Ct);
        response.EnsureSuccessStatusCode();
    }

    private static async Task<int> WaitForExitAsync(ClusterProcess process, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (!process.HasExited)
        {
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"{process.Name} still runs after {timeout.TotalSeconds} s.\n{process.Output}");
            }

            await Task.Delay(100, Ct);
        }

        return process.ExitCode;
    }

}

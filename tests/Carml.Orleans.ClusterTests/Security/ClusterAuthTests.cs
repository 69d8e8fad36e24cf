using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Carml.Orleans.Onnx.Iris;

namespace Carml.Orleans.ClusterTests.Security;

/// <summary>
/// Authentication in cluster mode with real processes: API keys and model ownership live in grain state on PostgreSQL,
/// so a key made through one gateway works through another, survives the gateway, and is stored only as a hash.
/// </summary>
public sealed class ClusterAuthTests : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly string _data = Path.Combine(Path.GetTempPath(), "carml-cluster-auth-" + Guid.NewGuid().ToString("N"));
    private readonly List<ClusterProcess> _processes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly string _adminKey = NewKey();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(_data);
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            await process.DisposeAsync();
        }

        _http.Dispose();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a process being torn down; the temp folder is cleaned by the OS.
        }
    }

    [Fact]
    public async Task Keys_and_ownership_made_through_one_gateway_hold_through_the_next_and_are_stored_hashed()
    {
        await using var postgres = new Carml.Orleans.Tests.PostgresServer();
        await postgres.InitializeAsync();
        postgres.SkipIfUnavailable();
        var database = ("Carml__Postgres__ConnectionString", await postgres.CreateDatabaseAsync());
        var consul = await StartEmulatorAsync();
        var silo = Start("auth-silo", ClusterProcess.BuiltDll("src/Silo", "Carml.Orleans.Silo"), consul, database,
            ("Carml__Silo__SiloPort", "0"), ("Carml__Silo__GatewayPort", "0"));
        await silo.WaitForLineAsync(@"Registered carml-silo as (\S+)", StartTimeout);

        var (first, firstProcess) = await StartGatewayAsync(consul, database);
        var alice = await CreateKeyAsync(first, "alice", "a");
        await RegisterIrisAsync(first, alice, "iris-owned");
        Assert.Equal(HttpStatusCode.OK, await PredictAsync(first, alice, "iris-owned"));
        Assert.Equal(0, await firstProcess.StopGracefullyAsync(TimeSpan.FromSeconds(60)));

        var (second, _) = await StartGatewayAsync(consul, database);
        var carol = await CreateKeyAsync(second, "carol", "c");
        Assert.Equal(HttpStatusCode.OK, await PredictAsync(second, alice, "iris-owned"));
        Assert.Equal(HttpStatusCode.NotFound, await PredictAsync(second, carol, "iris-owned"));
        Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(second, null, "iris-owned"));

        using (var revoke = new HttpRequestMessage(HttpMethod.Delete, new Uri(second, $"api/keys/{alice.Split('_')[1]}")))
        {
            revoke.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _adminKey);
            using var revoked = await _http.SendAsync(revoke, Ct);
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(second, alice, "iris-owned"));

        // The key records are in PostgreSQL's grain storage, without their secrets.
        await using var connection = new Npgsql.NpgsqlConnection(database.Item2);
        await connection.OpenAsync(Ct);
        await using var rows = new Npgsql.NpgsqlCommand("SELECT payloadbinary, grainidextensionstring FROM orleansstorage", connection);
        await using var reader = await rows.ExecuteReaderAsync(Ct);
        var stored = new StringBuilder();
        while (await reader.ReadAsync(Ct))
        {
            stored.Append(reader.IsDBNull(0) ? string.Empty : Encoding.Latin1.GetString((byte[])reader[0]));
            stored.Append(reader.IsDBNull(1) ? string.Empty : reader.GetString(1));
        }

        Assert.Contains(alice.Split('_')[1], stored.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Secret(alice), stored.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Secret(carol), stored.ToString(), StringComparison.Ordinal);
    }

    private static string NewKey() =>
        $"carml_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}_{Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_')}";

    private static string Secret(string key) => key[(key.IndexOf('_', 6) + 1)..];

    private async Task<string> CreateKeyAsync(Uri gateway, string user, string org)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway, "api/keys"))
        {
            Content = JsonContent.Create(new { user, organization = org }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _adminKey);
        using var response = await _http.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"Key creation answered {(int)response.StatusCode}: {body}\n{Outputs()}");
        return JsonDocument.Parse(body).RootElement.GetProperty("key").GetString()!;
    }

    private async Task RegisterIrisAsync(Uri gateway, string key, string name)
    {
        var iris = IrisSampleModel.Build(Path.Combine(RepositoryPaths.Root, "data", "iris.csv"));
        var manifest = iris.CreateManifest().ToYaml().Replace("name: iris", $"name: {name}", StringComparison.Ordinal);
        using var content = new MultipartFormDataContent
        {
            { new StringContent(manifest, Encoding.UTF8, "application/yaml"), "manifest", "manifest.yaml" },
        };
        var file = new ByteArrayContent(iris.OnnxBytes);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Add(file, "model", "model.onnx");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway, "api/models")) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await _http.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"Registration answered {(int)response.StatusCode}: {body}\n{Outputs()}");
    }

    private async Task<HttpStatusCode> PredictAsync(Uri gateway, string? key, string model)
    {
        const string body = """{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway, $"v2/models/{model}/infer"))
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        using var response = await _http.SendAsync(request, Ct);
        return response.StatusCode;
    }

    private async Task<Uri> StartEmulatorAsync()
    {
        var emulator = Track(ClusterProcess.Start(
            "consul-emulator",
            ClusterProcess.BuiltDll("tests/Carml.Orleans.ConsulEmulator", "Carml.Orleans.ConsulEmulator"),
            new Dictionary<string, string>(),
            "--port",
            "0"));
        var line = await emulator.WaitForLineAsync(@"consul-emulator listening on (\S+)", StartTimeout);
        return new Uri(line.Groups[1].Value);
    }

    private async Task<(Uri Address, ClusterProcess Process)> StartGatewayAsync(Uri consul, (string, string) database)
    {
        var httpPort = FreePort();
        var gateway = Start("gateway", ClusterProcess.BuiltDll("src/Gateway", "Carml.Orleans.Gateway"), consul, database,
            ("Carml__Gateway__HttpPort", httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Carml__Gateway__GrpcPort", FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("Carml__SampleModel__Enabled", "false"),
            ("Carml__Auth__Enabled", "true"),
            ("Carml__Auth__BootstrapAdminKey", _adminKey));
        var address = new Uri($"http://127.0.0.1:{httpPort}/");
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (gateway.HasExited)
            {
                throw new InvalidOperationException($"The gateway exited with code {gateway.ExitCode}.\n{gateway.Output}");
            }

            try
            {
                using var ready = await _http.GetAsync(new Uri(address, "v2/health/ready"), Ct);
                if (ready.StatusCode == HttpStatusCode.OK)
                {
                    return (address, gateway);
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (deadline.Elapsed > StartTimeout)
            {
                throw new TimeoutException($"The gateway was not ready within {StartTimeout.TotalSeconds} s.\n{gateway.Output}");
            }

            await Task.Delay(200, Ct);
        }
    }

    private ClusterProcess Start(string name, string dll, Uri consul, params (string Key, string Value)[] extra)
    {
        var environment = new Dictionary<string, string>
        {
            ["Carml__Mode"] = "cluster",
            ["Carml__Consul__Address"] = consul.ToString(),
            ["Carml__Silo__DataDirectory"] = _data,
            ["Carml__Catalog__CheckTtl"] = "00:00:10",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Carml"] = "Information",
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Warning",
        };
        foreach (var (key, value) in extra)
        {
            environment[key] = value;
        }

        return Track(ClusterProcess.Start(name, dll, environment));
    }

    private ClusterProcess Track(ClusterProcess process)
    {
        _processes.Add(process);
        return process;
    }

    private string Outputs() => string.Join('\n', _processes.Select(p => p.Output));

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

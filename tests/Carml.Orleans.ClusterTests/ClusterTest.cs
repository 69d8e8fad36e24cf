using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Carml.Orleans.Onnx.Iris;

namespace Carml.Orleans.ClusterTests;

/// <summary>A gateway process a cluster test started, with its HTTP and gRPC addresses.</summary>
public sealed record ClusterGateway(ClusterProcess Process, Uri Http, Uri Grpc);

/// <summary>
/// What every multi-process test shares: a private data directory, the processes it started (all stopped when the
/// test ends), and starting the Consul emulator, silos and gateways in cluster mode on free ports.
/// </summary>
public abstract class ClusterTest(string name) : IAsyncLifetime
{
    protected static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    protected string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), $"carml-{name}-{Guid.NewGuid():N}");

    protected List<ClusterProcess> Processes { get; } = [];

    protected HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(DataDirectory);
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in Processes)
        {
            await process.DisposeAsync();
        }

        Http.Dispose();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held by a process being torn down; the temp folder is cleaned by the OS.
        }

        GC.SuppressFinalize(this);
    }

    protected async Task<Uri> StartEmulatorAsync()
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

    /// <summary>Starts a silo process in cluster mode on free ports; <paramref name="extra"/> settings override the defaults.</summary>
    protected ClusterProcess StartSilo(string name, Uri consul, params (string Key, string Value)[] extra) =>
        Start(name, ClusterProcess.BuiltDll("src/Silo", "Carml.Orleans.Silo"), consul, [("Carml__Silo__SiloPort", "0"), ("Carml__Silo__GatewayPort", "0"), .. extra]);

    /// <summary>Starts a gateway process in cluster mode on free ports and waits until it reports ready.</summary>
    protected async Task<ClusterGateway> StartGatewayAsync(Uri consul, params (string Key, string Value)[] extra)
    {
        var httpPort = FreePort();
        var grpcPort = FreePort();
        var gateway = Start("gateway", ClusterProcess.BuiltDll("src/Gateway", "Carml.Orleans.Gateway"), consul,
        [
            ("Carml__Gateway__HttpPort", httpPort.ToString(CultureInfo.InvariantCulture)),
            ("Carml__Gateway__GrpcPort", grpcPort.ToString(CultureInfo.InvariantCulture)),
            ("Carml__Gateway__MetricsPort", "0"),
            ("Carml__SampleModel__Enabled", "false"),
            .. extra,
        ]);
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
                using var ready = await Http.GetAsync(new Uri(address, "v2/health/ready"), Ct);
                if (ready.StatusCode == HttpStatusCode.OK)
                {
                    return new ClusterGateway(gateway, address, new Uri($"http://127.0.0.1:{grpcPort}/"));
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

    /// <summary>Starts a process of the product in cluster mode against <paramref name="consul"/>, tracked for clean-up.</summary>
    protected ClusterProcess Start(string name, string dll, Uri consul, params (string Key, string Value)[] extra)
    {
        var environment = new Dictionary<string, string>
        {
            ["Carml__Mode"] = "cluster",
            ["Carml__Consul__Address"] = consul.ToString(),
            ["Carml__Silo__DataDirectory"] = DataDirectory,
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

    protected ClusterProcess Track(ClusterProcess process)
    {
        Processes.Add(process);
        return process;
    }

    /// <summary>
    /// Registers the Iris sample model as <paramref name="name"/> through the gateway's REST API (multipart manifest +
    /// ONNX file), with <paramref name="manifestTail"/> appended to the manifest and, when given, a bearer credential.
    /// </summary>
    protected async Task RegisterIrisAsync(Uri gateway, string name, string manifestTail = "", string? bearer = null)
    {
        var iris = IrisSampleModel.Build(Path.Combine(RepositoryPaths.Root, "data", "iris.csv"));
        var manifest = iris.CreateManifest().ToYaml().Replace("name: iris", $"name: {name}", StringComparison.Ordinal) + manifestTail;
        using var content = new MultipartFormDataContent
        {
            { new StringContent(manifest, Encoding.UTF8, "application/yaml"), "manifest", "manifest.yaml" },
        };
        var file = new ByteArrayContent(iris.OnnxBytes);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Add(file, "model", "model.onnx");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway, "api/models")) { Content = content };
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        using var response = await Http.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"Registration answered {(int)response.StatusCode}: {body}\n{Outputs()}");
    }

    /// <summary>Everything the processes printed, for failure messages.</summary>
    protected string Outputs() => string.Join('\n', Processes.Select(p => p.Output));

    protected static int FreePort() => Carml.Orleans.Core.FreePort.Next();
}

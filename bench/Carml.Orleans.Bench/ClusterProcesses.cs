using System.Diagnostics;
using System.Globalization;

namespace Carml.Orleans.Bench;

/// <summary>
/// Comparison (d): Carml in cluster mode as separate processes on this machine: the in-repo Consul API emulator, two
/// silos and a gateway (an Orleans client), each a Release build. Started with <c>--cluster true</c>; every process is
/// stopped by its own id on dispose.
/// </summary>
internal sealed class CarmlCluster : IDisposable
{
    private readonly List<Process> _processes = [];

    private CarmlCluster(Uri http, Uri grpc)
    {
        Http = http;
        Grpc = grpc;
    }

    public Uri Http { get; private set; }

    public Uri Grpc { get; private set; }

    public bool HasExited => _processes.Any(p => p.HasExited);

    public static async Task<CarmlCluster> StartAsync(string root, string dataDirectory)
    {
        var cluster = new CarmlCluster(new Uri("http://127.0.0.1"), new Uri("http://127.0.0.1"));
        try
        {
            var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.Start(Dll(root, "tests/Carml.Orleans.ConsulEmulator", "Carml.Orleans.ConsulEmulator"), new Dictionary<string, string>(), ["--port", "0"], line =>
            {
                const string marker = "consul-emulator listening on ";
                if (line.StartsWith(marker, StringComparison.Ordinal))
                {
                    listening.TrySetResult(line[marker.Length..].Trim());
                }
            });
            var consul = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            var environment = new Dictionary<string, string>
            {
                ["Carml__Mode"] = "cluster",
                ["Carml__Consul__Address"] = consul,
                ["Carml__Silo__DataDirectory"] = dataDirectory,
                ["Carml__Catalog__CheckTtl"] = "00:00:10",
                ["Logging__LogLevel__Default"] = "Warning",
                ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Warning",
            };
            foreach (var _ in new[] { 1, 2 })
            {
                var silo = new Dictionary<string, string>(environment) { ["Carml__Silo__SiloPort"] = "0", ["Carml__Silo__GatewayPort"] = "0" };
                cluster.Start(Dll(root, "src/Silo", "Carml.Orleans.Silo"), silo, [], null);
            }

            var (httpPort, grpcPort) = (Carml.Orleans.Core.FreePort.Next(), Carml.Orleans.Core.FreePort.Next());
            var gateway = new Dictionary<string, string>(environment)
            {
                ["Carml__Gateway__HttpPort"] = httpPort.ToString(CultureInfo.InvariantCulture),
                ["Carml__Gateway__GrpcPort"] = grpcPort.ToString(CultureInfo.InvariantCulture),
                ["Carml__Gateway__MetricsPort"] = "0",
                ["Carml__SampleModel__Enabled"] = "false",
            };
            cluster.Start(Dll(root, "src/Gateway", "Carml.Orleans.Gateway"), gateway, [], null);
            cluster.Http = new Uri($"http://127.0.0.1:{httpPort}");
            cluster.Grpc = new Uri($"http://127.0.0.1:{grpcPort}");
            using var http = new HttpClient { BaseAddress = cluster.Http, Timeout = TimeSpan.FromSeconds(5) };
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
            while (true)
            {
                if (cluster.HasExited)
                {
                    throw new InvalidOperationException("A cluster process exited while starting; its output is above.");
                }

                try
                {
                    using var response = await http.GetAsync("/v2/health/ready");
                    if (response.IsSuccessStatusCode)
                    {
                        return cluster;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException("The cluster gateway was not ready within 120 s.");
                }

                await Task.Delay(250);
            }
        }
        catch
        {
            cluster.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var process in Enumerable.Reverse(_processes))
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: false);
                process.WaitForExit(10_000);
            }

            process.Dispose();
        }
    }

    private void Start(string dll, Dictionary<string, string> environment, string[] arguments, Action<string>? onLine)
    {
        var start = new ProcessStartInfo("dotnet", [dll, .. arguments]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {dll}.");
        _processes.Add(process);
        var name = Path.GetFileNameWithoutExtension(dll);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            onLine?.Invoke(e.Data);
            if (onLine is null)
            {
                Console.Error.WriteLine($"[{name} {process.Id}] {e.Data}");
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"[{name} {process.Id}] {e.Data}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    private static string Dll(string root, string project, string assembly)
    {
        var path = Path.Combine(root, project, "bin", "Release", "net10.0", assembly + ".dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"Build it first: dotnet build -c Release {project} ({path} is missing).");
    }
}

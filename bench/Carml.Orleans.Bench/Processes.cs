using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace Carml.Orleans.Bench;

/// <summary>A server the harness started as a child process; stopped (only this process, by its id) on dispose.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, Uri http, Uri grpc)
    {
        _process = process;
        Http = http;
        Grpc = grpc;
    }

    public Uri Http { get; }

    public Uri Grpc { get; }

    public int ProcessId => _process.Id;

    /// <summary>Resident set size of the process now, in MiB (Linux /proc).</summary>
    public double ResidentMiB()
    {
        _process.Refresh();
        return _process.WorkingSet64 / (1024.0 * 1024.0);
    }

    /// <summary>Carml standalone: the Release gateway build, its own data directory, free loopback ports.</summary>
    public static Task<ServerProcess> StartCarmlAsync(string repositoryRoot, string dataDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var dll = Path.Combine(repositoryRoot, "src", "Gateway", "bin", "Release", "net10.0", "Carml.Orleans.Gateway.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"Build the gateway first: dotnet build -c Release src/Gateway ({dll} is missing).");
        }

        var (http, grpc) = (Carml.Orleans.Core.FreePort.Next(), Carml.Orleans.Core.FreePort.Next());
        var start = new ProcessStartInfo("dotnet", [dll]) { WorkingDirectory = repositoryRoot, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["Carml__Gateway__HttpPort"] = http.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Carml__Gateway__GrpcPort"] = grpc.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Carml__Gateway__MetricsPort"] = "0";
        start.Environment["Carml__Silo__SiloPort"] = "0";
        start.Environment["Carml__Silo__GatewayPort"] = "0";
        start.Environment["Carml__Silo__DataDirectory"] = dataDirectory;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        return StartAsync(start, http, grpc);
    }

    /// <summary>Comparison (b): this program's minimal-server command.</summary>
    public static Task<ServerProcess> StartMinimalAsync(string modelsDirectory)
    {
        var (http, grpc) = (Carml.Orleans.Core.FreePort.Next(), Carml.Orleans.Core.FreePort.Next());
        var self = typeof(ServerProcess).Assembly.Location;
        var start = new ProcessStartInfo("dotnet", [self, "minimal-server", "--http", $"{http}", "--grpc", $"{grpc}", "--models", modelsDirectory])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        return StartAsync(start, http, grpc);
    }

    private static async Task<ServerProcess> StartAsync(ProcessStartInfo start, int httpPort, int grpcPort)
    {
        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {start.FileName}.");
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null && !e.Data.StartsWith("minimal-server ready", StringComparison.Ordinal))
            {
                Console.Error.WriteLine($"[{process.Id}] {e.Data}");
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine($"[{process.Id}] {e.Data}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, new Uri($"http://127.0.0.1:{httpPort}"), new Uri($"http://127.0.0.1:{grpcPort}"));
        using var http = new HttpClient { BaseAddress = server.Http, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{start.FileName} {string.Join(' ', start.ArgumentList)} exited with {process.ExitCode} while starting.");
            }

            try
            {
                using var response = await http.GetAsync("/v2/health/ready");
                if (response.IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(200);
        }

        server.Dispose();
        throw new TimeoutException($"{start.FileName} did not become ready within 120 s.");
    }

    /// <summary>Registers a model with Carml's management API (multipart manifest + ONNX file).</summary>
    public Task RegisterAsync(BenchModel model) => RegisterAsync(Http, model);

    public static async Task RegisterAsync(Uri gateway, BenchModel model)
    {
        using var http = new HttpClient { BaseAddress = gateway, Timeout = TimeSpan.FromMinutes(5) };
        using var content = new MultipartFormDataContent
        {
            { new StringContent(model.Manifest, System.Text.Encoding.UTF8, "application/yaml"), "manifest", "manifest.yaml" },
        };
        var file = new ByteArrayContent(model.Onnx);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Add(file, "model", $"{model.Name}.onnx");
        using var response = await http.PostAsync("/api/models", content);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"Registering {model.Name} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>Whether the server is still running (a crash shows as connection errors; this says which).</summary>
    public bool HasExited => _process.HasExited;

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
    }
}

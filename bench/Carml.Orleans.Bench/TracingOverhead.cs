using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Carml.Orleans.Bench;

/// <summary>
/// Issue 7's closing figure: what tracing costs. Two Carml standalone processes serve the same Iris model, one with no
/// trace exporter (the default) and one exporting OTLP (http/protobuf) to a sink in this process that accepts and
/// counts what it gets; each is loaded over gRPC and HTTP at trace level none (no header) and full
/// (<c>Carml-Trace-Level: full</c>), windows alternating so drifts of a shared machine hit every case alike.
/// </summary>
internal static class TracingOverhead
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = Cli.Parse(args);
        var root = Suite.FindRoot();
        var concurrency = (int)options.Number("concurrency", 16);
        var window = TimeSpan.FromSeconds(options.Number("window", 2));
        var windows = (int)options.Number("windows", 5);
        var output = Path.GetFullPath(options.Get("out", Path.Combine(root, "bench", "results")));
        Directory.CreateDirectory(output);
        var work = Path.Combine(Path.GetTempPath(), "cob-tracing-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        var machine = Machine.Describe();
        Console.WriteLine(machine);

        await using var sink = await OtlpSink.StartAsync();
        var model = BenchModel.Create(root, new HashSet<string> { "iris" }, [concurrency]).Single();
        using var plain = await ServerProcess.StartCarmlAsync(root, Path.Combine(work, "plain"));
        using var exporting = await ServerProcess.StartCarmlAsync(root, Path.Combine(work, "otlp"), new Dictionary<string, string>
        {
            ["Carml__Tracing__Otlp__Endpoint"] = sink.Address.ToString(),
            ["Carml__Tracing__Otlp__Protocol"] = "http/protobuf",
        });
        await plain.RegisterAsync(model);
        await exporting.RegisterAsync(model);

        using var targets = new TargetSet(
            new GrpcTarget("gRPC, no exporter, level none", plain.Grpc, model, 1),
            new GrpcTarget("gRPC, no exporter, level full", plain.Grpc, model, 1, "full"),
            new GrpcTarget("gRPC, OTLP exporter, level none", exporting.Grpc, model, 1),
            new GrpcTarget("gRPC, OTLP exporter, level full", exporting.Grpc, model, 1, "full"),
            new HttpBinaryTarget("HTTP, no exporter, level none", plain.Http, model, 1, concurrency),
            new HttpBinaryTarget("HTTP, no exporter, level full", plain.Http, model, 1, concurrency, "full"),
            new HttpBinaryTarget("HTTP, OTLP exporter, level none", exporting.Http, model, 1, concurrency),
            new HttpBinaryTarget("HTTP, OTLP exporter, level full", exporting.Http, model, 1, concurrency, "full"));
        var settings = new SuiteSettings([concurrency], [], window, TimeSpan.FromSeconds(0.5), windows, windows, 0.05);
        var results = await Suite.AlternateAsync(
            [.. targets.Items.Select(t => (t.Name, (Func<Task<Window>>)(() => LoadGenerator.ClosedLoopAsync(t, concurrency, settings.Warmup, window))))],
            settings);

        var measurements = results.Select(r => new Measurement(model.Name, r.Target, "closed", concurrency, r.Windows)).ToList();
        var report = new StringBuilder();
        report.AppendLine("# Tracing overhead: trace level none vs full").AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"{machine}. Iris sample model (4 inputs, 1 row per request), closed loop with {concurrency} concurrent requests, {windows} alternating windows of {window.TotalSeconds:F0} s per case.");
        report.AppendLine(CultureInfo.InvariantCulture, $"OTLP sink received {sink.Requests} export requests, {sink.Bytes / 1024.0 / 1024.0:F1} MiB.").AppendLine();
        report.AppendLine("| case | requests/s | vs level none | p50 µs | p99 µs | errors |");
        report.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var m in measurements)
        {
            var baseline = measurements.First(b => b.Target == m.Target.Replace("level full", "level none", StringComparison.Ordinal));
            report.AppendLine(CultureInfo.InvariantCulture,
                $"| {m.Target} | {m.Throughput:F0} | {m.Throughput / baseline.Throughput:P0} | {m.PercentileMicroseconds(0.5):F0} | {m.PercentileMicroseconds(0.99):F0} | {m.Errors} |");
            Console.WriteLine(Report.Line(m));
        }

        var path = Path.Combine(output, "tracing.md");
        await File.WriteAllTextAsync(path, report.ToString());
        Console.WriteLine(report);
        Console.WriteLine($"wrote {path}");
        Directory.Delete(work, recursive: true);
        return measurements.Any(m => m.Errors > 0) ? 1 : 0;
    }

    /// <summary>An OTLP/HTTP endpoint that accepts every export (an empty protobuf answer is a full success) and counts it.</summary>
    private sealed class OtlpSink : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private long _requests;
        private long _bytes;

        private OtlpSink(WebApplication app, Uri address)
        {
            _app = app;
            Address = address;
        }

        public Uri Address { get; }

        public long Requests => Interlocked.Read(ref _requests);

        public long Bytes => Interlocked.Read(ref _bytes);

        public static async Task<OtlpSink> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            var port = Carml.Orleans.Core.FreePort.Next();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http1));
            var app = builder.Build();
            var sink = new OtlpSink(app, new Uri($"http://127.0.0.1:{port}"));
            app.MapPost("/v1/{signal}", async (HttpContext context) =>
            {
                using var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body);
                Interlocked.Increment(ref sink._requests);
                Interlocked.Add(ref sink._bytes, body.Length);
                context.Response.ContentType = "application/x-protobuf";
            });
            await app.StartAsync();
            return sink;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}

using System.Globalization;
using Carml.Orleans.Bench;

// The benchmark harness (issue 9). Commands:
//   suite          raw ONNX Runtime in-process (a), a minimal ASP.NET Core gRPC/HTTP service (b) and Carml standalone (c)
//                  side by side, alternating windows; closed-loop concurrency sweeps and an open-loop rate sweep;
//                  writes results.csv, results.md and PNG plots.
//   minimal-server comparison (b), started by the suite as a child process.
// Usage: bash bench/run.sh [suite options], or
//   dotnet run -c Release --project bench/Carml.Orleans.Bench -- suite [--models iris,mlp,resnet50]
//     [--concurrency 1,4,16,64,128] [--rates 2000,4000] [--window 2] [--warmup 0.5] [--min-windows 3] [--max-windows 6]
//     [--out bench/results] [--cluster true] [--resnet-runtime "{intra_op_threads: 2, max_concurrent_runs: 1}"]
//   load           starts Carml standalone, registers one model, prints its process id and loads it for a while: for
//                  profiling the server (dotnet-trace collect -p PID) under a steady closed loop.
//   tracing        issue 7's closing figure: requests/s on the Iris sample at trace level none vs full, without an
//                  exporter and exporting OTLP to a local sink; writes tracing.md. [--concurrency 16] [--window 2]
//                  [--windows 5] [--out bench/results]
//   upload         how long a tus upload takes to finish (the final PATCH moves it into the content store), on this
//                  checkout's Release gateway or another's: [--mb 200] [--chunk-mb 16] [--runs 3] [--gateway-root DIR]
return args.Length > 0 && args[0] == "minimal-server"
    ? await MinimalServer.RunAsync(args[1..])
    : args.Length > 0 && args[0] == "upload"
        ? await UploadFinish.RunAsync(args[1..])
    : args.Length > 0 && args[0] == "tracing"
        ? await TracingOverhead.RunAsync(args[1..])
    : args.Length > 0 && args[0] == "load"
        ? await Suite.LoadAsync(args[1..])
        : await Suite.RunAsync(args.Length > 0 && args[0] == "suite" ? args[1..] : args);

internal static class Cli
{
    public static Dictionary<string, string> Parse(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"Expected --name value pairs, got '{args[i]}'.");
            }

            options[args[i][2..]] = args[++i];
        }

        return options;
    }

    public static string Get(this Dictionary<string, string> options, string name, string fallback) =>
        options.TryGetValue(name, out var value) ? value : fallback;

    public static double Number(this Dictionary<string, string> options, string name, double fallback) =>
        double.Parse(options.Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    public static int[] Ints(this Dictionary<string, string> options, string name, string fallback) =>
        [.. options.Get(name, fallback).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(v => int.Parse(v, CultureInfo.InvariantCulture))];
}

internal sealed record SuiteSettings(int[] Concurrency, int[] Rates, TimeSpan Window, TimeSpan Warmup, int MinWindows, int MaxWindows, double StableSpread);

internal static class Suite
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = Cli.Parse(args);
        var root = FindRoot();
        var settings = new SuiteSettings(
            options.Ints("concurrency", "1,4,16,64,128"),
            options.Ints("rates", "2000,4000"),
            TimeSpan.FromSeconds(options.Number("window", 2)),
            TimeSpan.FromSeconds(options.Number("warmup", 0.5)),
            (int)options.Number("min-windows", 3),
            (int)options.Number("max-windows", 6),
            options.Number("stable", 0.05));
        var names = options.Get("models", "iris,mlp,resnet50").Split(',').ToHashSet(StringComparer.Ordinal);
        var output = Path.GetFullPath(options.Get("out", Path.Combine(root, "bench", "results")));
        Directory.CreateDirectory(output);
        var work = Path.Combine(Path.GetTempPath(), "cob-perf-suite-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(Path.Combine(work, "models"));

        var machine = Machine.Describe();
        Console.WriteLine(machine);
        var models = BenchModel.Create(root, names, settings.Concurrency, options.Get("resnet-runtime", BenchModel.DefaultResNetRuntime));
        foreach (var model in models)
        {
            await File.WriteAllBytesAsync(Path.Combine(work, "models", model.Name + ".onnx"), model.Onnx);
        }

        var report = new Report(machine, settings);
        using (var carml = await ServerProcess.StartCarmlAsync(root, Path.Combine(work, "carml-data")))
        using (var minimal = await ServerProcess.StartMinimalAsync(Path.Combine(work, "models")))
        using (var cluster = options.Get("cluster", "false") == "true" ? await CarmlCluster.StartAsync(root, Path.Combine(work, "cluster-data")) : null)
        {
            // Idle, with only the sample model (registered by standalone on first start) loaded.
            await Task.Delay(TimeSpan.FromSeconds(3));
            report.CarmlIdleResidentMiB = carml.ResidentMiB();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Carml standalone idle RSS with the sample model: {report.CarmlIdleResidentMiB:F0} MiB"));
            foreach (var model in models)
            {
                await carml.RegisterAsync(model);
                if (cluster is not null)
                {
                    await ServerProcess.RegisterAsync(cluster.Http, model);
                }
            }

            foreach (var model in models)
            {
                RunRaw(model, report);
                await RunClosedLoopAsync(model, carml, minimal, cluster, settings, report);
                if (model.Name == "mlp")
                {
                    await RunOpenLoopAsync(model, carml, minimal, settings, report);
                }

                report.Write(output);
            }
        }

        report.Write(output);
        Console.WriteLine($"wrote {output}/results.csv, results.md and plots");
        Directory.Delete(work, recursive: true);
        return 0;
    }

    public static async Task<int> LoadAsync(string[] args)
    {
        var options = Cli.Parse(args);
        var root = FindRoot();
        var model = BenchModel.Create(root, new HashSet<string> { options.Get("model", "mlp") }, [1]).Single();
        var work = Path.Combine(Path.GetTempPath(), "cob-perf-load-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        using (var carml = await ServerProcess.StartCarmlAsync(root, work))
        {
            await carml.RegisterAsync(model);
            Console.WriteLine($"PID {carml.ProcessId}");
            using ITarget target = options.Get("protocol", "grpc") == "http"
                ? new HttpBinaryTarget("carml HTTP", carml.Http, model, 1, (int)options.Number("concurrency", 16))
                : new GrpcTarget("carml gRPC", carml.Grpc, model, 1);
            var window = await LoadGenerator.ClosedLoopAsync(target, (int)options.Number("concurrency", 16), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(options.Number("seconds", 15)));
            Console.WriteLine(Report.Line(new Measurement(model.Name, target.Name, "closed", options.Number("concurrency", 16), [window])));
        }

        Directory.Delete(work, recursive: true);
        return 0;
    }

    private static void RunRaw(BenchModel model, Report report)
    {
        var heavy = model.Name == "resnet50";
        var duration = TimeSpan.FromSeconds(heavy ? 6 : 2);
        int[] batches = heavy ? [1, 8] : [1, 8, 32, 64];
        foreach (var batch in batches)
        {
            foreach (var callers in new[] { 1, 2 })
            {
                var result = RawOrt.Measure(model, batch, callers, intraOpThreads: 1, duration);
                report.Raw.Add(result);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"raw {model.Name} batch {batch} callers {callers}: {result.RunsPerSecond:F0} runs/s, {result.SamplesPerSecond:F0} samples/s, p50 {result.P50Microseconds:F0} us"));
            }
        }

        if (heavy)
        {
            // One caller using both cores inside each run, for comparison with two single-threaded callers.
            foreach (var batch in new[] { 1, 8 })
            {
                var result = RawOrt.Measure(model, batch, callers: 1, intraOpThreads: 2, duration);
                report.Raw.Add(result);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"raw {model.Name} batch {batch} callers 1 intra 2: {result.SamplesPerSecond:F1} samples/s, p50 {result.P50Microseconds:F0} us"));
            }
        }
    }

    private static async Task RunClosedLoopAsync(BenchModel model, ServerProcess carml, ServerProcess minimal, CarmlCluster? cluster, SuiteSettings settings, Report report)
    {
        var heavy = model.Name == "resnet50";
        var window = heavy ? settings.Window * 2 : settings.Window;
        var warmup = heavy ? settings.Warmup * 6 : settings.Warmup;
        foreach (var concurrency in model.Concurrency)
        {
            using var targets = new TargetSet(
                new GrpcTarget("minimal gRPC", minimal.Grpc, model, 1),
                new GrpcTarget("carml gRPC", carml.Grpc, model, 1),
                new HttpBinaryTarget("minimal HTTP", minimal.Http, model, 1, concurrency),
                new HttpBinaryTarget("carml HTTP", carml.Http, model, 1, concurrency));
            using var clusterTargets = cluster is null
                ? new TargetSet()
                : new TargetSet(
                    new GrpcTarget("cluster gRPC", cluster.Grpc, model, 1),
                    new HttpBinaryTarget("cluster HTTP", cluster.Http, model, 1, concurrency));
            var sources = targets.Items.Concat(clusterTargets.Items).Select(t => (t.Name, (Func<Task<Window>>)(async () =>
            {
                var result = await LoadGenerator.ClosedLoopAsync(t, concurrency, warmup, window);
                EnsureRunning(carml, minimal);
                if (cluster is { HasExited: true })
                {
                    throw new InvalidOperationException("A cluster process exited during the run; its output is above.");
                }

                return result;
            }))).ToList();

            // For a compute-bound model the machine's limit moves with the load of a shared box: measure raw ORT's best
            // batched configurations in the same rotation, so the ratio to it is a same-run ratio too.
            using var rawTwoThreads = heavy && concurrency == model.Concurrency.Max() ? new RawOrtSession(model, intraOpThreads: 2) : null;
            using var rawOneThread = heavy && concurrency == model.Concurrency.Max() ? new RawOrtSession(model, intraOpThreads: 1) : null;
            if (rawTwoThreads is not null && rawOneThread is not null)
            {
                sources.Add(("raw ORT batch 8, 1 caller, intra-op 2", () => Task.Run(() => rawTwoThreads.Window(batch: 8, callers: 1, window))));
                sources.Add(("raw ORT batch 8, 2 callers, intra-op 1", () => Task.Run(() => rawOneThread.Window(batch: 8, callers: 2, window))));
            }

            var windows = await AlternateAsync(sources, settings);
            foreach (var (target, list) in windows)
            {
                var measurement = new Measurement(model.Name, target, "closed", concurrency, list);
                report.Closed.Add(measurement);
                Console.WriteLine(Report.Line(measurement));
            }
        }
    }

    private static async Task RunOpenLoopAsync(BenchModel model, ServerProcess carml, ServerProcess minimal, SuiteSettings settings, Report report)
    {
        foreach (var rate in settings.Rates)
        {
            using var targets = new TargetSet(
                new GrpcTarget("minimal gRPC", minimal.Grpc, model, 1),
                new GrpcTarget("carml gRPC", carml.Grpc, model, 1));
            var windows = await AlternateAsync(
                [.. targets.Items.Select(t => (t.Name, (Func<Task<Window>>)(() => LoadGenerator.OpenLoopAsync(t, rate, settings.Warmup, settings.Window))))],
                settings with { MaxWindows = settings.MinWindows });
            foreach (var (target, list) in windows)
            {
                var measurement = new Measurement(model.Name, target, "open", rate, list);
                report.Open.Add(measurement);
                Console.WriteLine(Report.Line(measurement));
            }
        }
    }

    /// <summary>
    /// Windows of every target in turn (A B C D A B C D ...), so slow drifts of a shared machine hit all alike; stops when
    /// every target has at least the minimum windows and its throughput spread is under the threshold, or at the maximum.
    /// </summary>
    internal static async Task<List<(string Target, List<Window> Windows)>> AlternateAsync(
        IReadOnlyList<(string Name, Func<Task<Window>> Measure)> sources, SuiteSettings settings)
    {
        var results = sources.Select(t => (t.Name, Windows: new List<Window>())).ToList();
        for (var round = 0; round < settings.MaxWindows; round++)
        {
            for (var i = 0; i < sources.Count; i++)
            {
                results[i].Windows.Add(await sources[i].Measure());
            }

            if (round + 1 >= settings.MinWindows && results.All(r => Stable(r.Windows, settings)))
            {
                break;
            }
        }

        return results;
    }

    private static void EnsureRunning(ServerProcess carml, ServerProcess minimal)
    {
        if (carml.HasExited || minimal.HasExited)
        {
            throw new InvalidOperationException(
                $"A server exited during the run (Carml: {carml.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "running"}, minimal: {minimal.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "running"}); its last output is above.");
        }
    }

    private static bool Stable(List<Window> windows, SuiteSettings settings)
    {
        var last = windows.TakeLast(settings.MinWindows).Select(w => w.Throughput).ToArray();
        var mean = last.Average();
        return mean > 0 && last.All(v => Math.Abs(v - mean) / mean <= settings.StableSpread);
    }

    internal static string FindRoot()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Carml.Orleans.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Run the harness from inside the repository (Carml.Orleans.sln not found above the working directory).");
    }
}

internal sealed class TargetSet(params ITarget[] items) : IDisposable
{
    public IReadOnlyList<ITarget> Items { get; } = items;

    public void Dispose()
    {
        foreach (var item in Items)
        {
            item.Dispose();
        }
    }
}

internal static class Machine
{
    public static string Describe()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
        return string.Create(CultureInfo.InvariantCulture,
            $"{Environment.ProcessorCount} cores ({cpu ?? "unknown CPU"}), {Environment.OSVersion}, .NET {Environment.Version}, load average at start {load}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
    }
}

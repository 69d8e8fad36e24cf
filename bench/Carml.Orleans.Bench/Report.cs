using System.Globalization;
using System.Text;

namespace Carml.Orleans.Bench;

/// <summary>Everything measured in one run, written as CSV, a markdown table and PNG plots.</summary>
internal sealed class Report(string machine, SuiteSettings settings)
{
    public List<RawResult> Raw { get; } = [];

    public List<Measurement> Closed { get; } = [];

    public List<Measurement> Open { get; } = [];

    public double CarmlIdleResidentMiB { get; set; }

    public static string Line(Measurement m) => string.Create(CultureInfo.InvariantCulture,
        $"{m.Model} {m.Target} {m.Mode} {m.Load}: {m.Throughput:F0} req/s, p50 {m.PercentileMicroseconds(0.5):F0} us, p99 {m.PercentileMicroseconds(0.99):F0} us, queue {m.QueueMicroseconds:F0} us, compute {m.ComputeMicroseconds:F0} us, batch {m.BatchSize:F1}, windows {m.Windows.Count} (spread {m.Spread:P1}), errors {m.Errors}{(m.FirstError is { } e ? $" ({e})" : "")}");

    public void Write(string directory)
    {
        WriteCsv(Path.Combine(directory, "results.csv"));
        File.WriteAllText(Path.Combine(directory, "results.md"), Markdown());
        foreach (var model in Closed.Select(m => m.Model).Distinct())
        {
            Plots.Write(directory, model, [.. Closed.Where(m => m.Model == model)]);
        }
    }

    private void WriteCsv(string path)
    {
        var csv = new StringBuilder("model,target,mode,load,throughput_per_s,p50_us,p90_us,p95_us,p99_us,server_queue_us,server_compute_us,mean_batch,windows,spread,errors\n");
        foreach (var m in Closed.Concat(Open))
        {
            csv.Append(CultureInfo.InvariantCulture,
                $"{m.Model},{m.Target},{m.Mode},{m.Load},{m.Throughput:F1},{m.PercentileMicroseconds(0.5):F1},{m.PercentileMicroseconds(0.9):F1},{m.PercentileMicroseconds(0.95):F1},{m.PercentileMicroseconds(0.99):F1},{m.QueueMicroseconds:F1},{m.ComputeMicroseconds:F1},{m.BatchSize:F2},{m.Windows.Count},{m.Spread:F3},{m.Errors}\n");
        }

        foreach (var r in Raw)
        {
            csv.Append(CultureInfo.InvariantCulture,
                $"{r.Model},raw ORT intra {r.IntraOpThreads} batch {r.Batch},raw,{r.Callers},{r.RunsPerSecond:F1},{r.P50Microseconds:F1},,,,,,{r.Batch},1,0,0\n");
        }

        File.WriteAllText(path, csv.ToString());
    }

    private string Markdown()
    {
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"Machine: {machine}. Windows of {settings.Window.TotalSeconds:0.#} s after {settings.Warmup.TotalSeconds:0.#} s warm-up (ResNet-50: twice the window, six times the warm-up), targets alternating, {settings.MinWindows}-{settings.MaxWindows} windows until the last {settings.MinWindows} agree within {settings.StableSpread:P0}.");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Carml standalone resident set, idle with the sample model: {CarmlIdleResidentMiB:F0} MiB.");
        md.AppendLine();
        md.AppendLine("### (a) Raw ONNX Runtime in-process");
        md.AppendLine();
        md.AppendLine("| model | batch | callers | intra-op threads | runs/s | samples/s | p50 µs per run |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in Raw)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {r.Model} | {r.Batch} | {r.Callers} | {r.IntraOpThreads} | {Rate(r.RunsPerSecond)} | {Rate(r.SamplesPerSecond)} | {r.P50Microseconds:F0} |");
        }

        md.AppendLine();
        md.AppendLine("### Closed loop: (b) minimal ASP.NET Core + ORT vs (c) Carml standalone");
        md.AppendLine();
        md.AppendLine("| model | target | concurrency | req/s | ×(b) same protocol | p50 µs | p90 µs | p95 µs | p99 µs | server queue µs | server compute µs | mean batch | windows (spread) | errors |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var m in Closed)
        {
            md.AppendLine(Row(m, Closed));
        }

        if (Open.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("### Open loop (fixed request rate, released by a 1 ms timer; latency counted from each send)");
            md.AppendLine();
            md.AppendLine("| model | target | offered req/s | served req/s | ×(b) | p50 µs | p90 µs | p95 µs | p99 µs | server queue µs | server compute µs | mean batch | windows (spread) | errors |");
            md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
            foreach (var m in Open)
            {
                md.AppendLine(Row(m, Open));
            }
        }

        return md.ToString();
    }

    /// <summary>Whole numbers for fast targets, one decimal where a model runs only a few times a second.</summary>
    private static string Rate(double perSecond) => perSecond.ToString(perSecond < 100 ? "F1" : "F0", CultureInfo.InvariantCulture);

    private static string Row(Measurement m, List<Measurement> all)
    {
        var protocol = m.Target.Split(' ')[1].TrimEnd(',');
        var baseline = all.FirstOrDefault(b => b.Model == m.Model && b.Load == m.Load && b.Target == $"minimal {protocol}");
        var ratio = baseline is null || baseline.Throughput == 0 ? "" : (m.Throughput / baseline.Throughput).ToString("F2", CultureInfo.InvariantCulture);
        return string.Create(CultureInfo.InvariantCulture,
            $"| {m.Model} | {m.Target} | {m.Load} | {Rate(m.Throughput)} | {ratio} | {m.PercentileMicroseconds(0.5):F0} | {m.PercentileMicroseconds(0.9):F0} | {m.PercentileMicroseconds(0.95):F0} | {m.PercentileMicroseconds(0.99):F0} | {m.QueueMicroseconds:F0} | {m.ComputeMicroseconds:F0} | {m.BatchSize:F1} | {m.Windows.Count} ({m.Spread:P0}) | {m.Errors} |");
    }
}

internal static class Plots
{
    /// <summary>Throughput and p50 latency against concurrency, one line per target: two PNGs.</summary>
    public static void Write(string directory, string model, IReadOnlyList<Measurement> measurements)
    {
        var levels = measurements.Select(m => m.Load).Distinct().Order().ToArray();
        Draw(Path.Combine(directory, $"{model}-throughput.png"), $"{model}: throughput (closed loop)", "requests/s", levels, measurements, m => m.Throughput);
        Draw(Path.Combine(directory, $"{model}-latency.png"), $"{model}: p50 latency (closed loop)", "ms", levels, measurements, m => m.PercentileMicroseconds(0.5) / 1000);
    }

    private static void Draw(string path, string title, string unit, double[] levels, IReadOnlyList<Measurement> measurements, Func<Measurement, double> value)
    {
        var plot = new ScottPlot.Plot();
        foreach (var group in measurements.GroupBy(m => m.Target))
        {
            var points = group.OrderBy(m => m.Load).ToArray();
            var line = plot.Add.Scatter(points.Select(m => (double)Array.IndexOf(levels, m.Load)).ToArray(), points.Select(value).ToArray());
            line.LegendText = group.Key;
        }

        var ticks = levels.Select((v, i) => new ScottPlot.Tick(i, v.ToString(CultureInfo.InvariantCulture))).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.XLabel("concurrency");
        plot.YLabel(unit);
        plot.Title(title);
        plot.ShowLegend();
        plot.SavePng(path, 800, 450);
    }
}

using System.Diagnostics;

namespace Carml.Orleans.Bench;

/// <summary>One measurement window: completed requests, errors and every latency, with the server's split.</summary>
internal sealed record Window(double Seconds, long[] LatencyTicks, long Errors, double MeanQueueMicroseconds, double MeanComputeMicroseconds, double MeanBatchSize, string? FirstError)
{
    public double Throughput => LatencyTicks.Length / Seconds;
}

/// <summary>Several windows of one target at one load, merged.</summary>
internal sealed record Measurement(string Model, string Target, string Mode, double Load, IReadOnlyList<Window> Windows)
{
    private long[] Sorted => _sorted ??= [.. Windows.SelectMany(w => w.LatencyTicks).Order()];
    private long[]? _sorted;

    public double Throughput => Windows.Sum(w => w.LatencyTicks.Length) / Windows.Sum(w => w.Seconds);

    public long Errors => Windows.Sum(w => w.Errors);

    /// <summary>Coefficient of variation of the windows' throughput.</summary>
    public double Spread
    {
        get
        {
            var values = Windows.Select(w => w.Throughput).ToArray();
            var mean = values.Average();
            return mean == 0 ? 0 : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Length) / mean;
        }
    }

    public double PercentileMicroseconds(double q)
    {
        var sorted = Sorted;
        return sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))] * 1e6 / Stopwatch.Frequency;
    }

    public double QueueMicroseconds => Weighted(w => w.MeanQueueMicroseconds);

    public double ComputeMicroseconds => Weighted(w => w.MeanComputeMicroseconds);

    public double BatchSize => Weighted(w => w.MeanBatchSize);

    public string? FirstError => Windows.Select(w => w.FirstError).FirstOrDefault(e => e is not null);

    private double Weighted(Func<Window, double> value)
    {
        var total = Windows.Sum(w => (double)w.LatencyTicks.Length);
        return total == 0 ? 0 : Windows.Sum(w => value(w) * w.LatencyTicks.Length) / total;
    }
}

/// <summary>Closed-loop (N workers, each sends and waits) and open-loop (requests at a fixed rate) load.</summary>
internal static class LoadGenerator
{
    /// <summary>Runs <paramref name="concurrency"/> workers for a warm-up and then one window.</summary>
    public static async Task<Window> ClosedLoopAsync(ITarget target, int concurrency, TimeSpan warmup, TimeSpan window)
    {
        using var stop = new CancellationTokenSource();
        var recording = 0;
        var samples = new Recorder[concurrency];
        var workers = new Task[concurrency];
        for (var w = 0; w < concurrency; w++)
        {
            var recorder = samples[w] = new Recorder();
            workers[w] = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var start = Stopwatch.GetTimestamp();
                    try
                    {
                        var split = await target.SendAsync(CancellationToken.None);
                        if (Volatile.Read(ref recording) == 1)
                        {
                            recorder.Add(Stopwatch.GetTimestamp() - start, split);
                        }
                    }
                    catch (Exception e) when (!stop.IsCancellationRequested)
                    {
                        if (Volatile.Read(ref recording) == 1)
                        {
                            recorder.Fail(e);
                        }
                    }
                    catch (Exception)
                    {
                        break;
                    }
                }
            });
        }

        await Task.Delay(warmup);
        Volatile.Write(ref recording, 1);
        var clock = Stopwatch.StartNew();
        await Task.Delay(window);
        Volatile.Write(ref recording, 0);
        var seconds = clock.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        return Recorder.Merge(samples, seconds);
    }

    /// <summary>
    /// Sends requests at <paramref name="rate"/> per second whether or not earlier ones were answered (a stalled server
    /// shows up as latency and requests in flight, not as a slower send rate). A 1 ms periodic timer releases every
    /// request that has come due, so the sender never spins on a core the servers need; latency counts from the send.
    /// </summary>
    public static async Task<Window> OpenLoopAsync(ITarget target, double rate, TimeSpan warmup, TimeSpan window)
    {
        var recorder = new Recorder();
        var begin = Stopwatch.GetTimestamp();
        var measureFrom = begin + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var end = measureFrom + (long)(window.TotalSeconds * Stopwatch.Frequency);
        var inFlight = new List<Task>();
        long sent = 0;
        using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(1));
        while (true)
        {
            var now = Stopwatch.GetTimestamp();
            if (now >= end)
            {
                break;
            }

            var due = (long)((now - begin) * rate / Stopwatch.Frequency);
            for (; sent < due; sent++)
            {
                inFlight.Add(SendOneAsync(target, now >= measureFrom, recorder));
            }

            if (inFlight.Count > 4096)
            {
                inFlight.RemoveAll(t => t.IsCompleted);
            }

            await tick.WaitForNextTickAsync();
        }

        await Task.WhenAll(inFlight);
        return Recorder.Merge([recorder], window.TotalSeconds);
    }

    private static async Task SendOneAsync(ITarget target, bool record, Recorder recorder)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            var split = await target.SendAsync(CancellationToken.None);
            if (record)
            {
                lock (recorder)
                {
                    recorder.Add(Stopwatch.GetTimestamp() - start, split);
                }
            }
        }
        catch (Exception e)
        {
            if (record)
            {
                lock (recorder)
                {
                    recorder.Fail(e);
                }
            }
        }
    }

    private sealed class Recorder
    {
        private readonly List<long> _latencies = new(1 << 16);
        private double _queue;
        private double _compute;
        private double _batch;
        private long _errors;
        private string? _firstError;

        public void Add(long ticks, ServerSplit split)
        {
            _latencies.Add(ticks);
            _queue += split.QueueMicroseconds;
            _compute += split.ComputeMicroseconds;
            _batch += split.BatchSize;
        }

        public void Fail(Exception e)
        {
            _errors++;
            _firstError ??= e.GetBaseException().Message;
        }

        public static Window Merge(Recorder[] recorders, double seconds)
        {
            var latencies = recorders.SelectMany(r => r._latencies).ToArray();
            var count = Math.Max(1, latencies.Length);
            return new Window(
                seconds,
                latencies,
                recorders.Sum(r => r._errors),
                recorders.Sum(r => r._queue) / count,
                recorders.Sum(r => r._compute) / count,
                recorders.Sum(r => r._batch) / count,
                recorders.Select(r => r._firstError).FirstOrDefault(e => e is not null));
        }
    }
}

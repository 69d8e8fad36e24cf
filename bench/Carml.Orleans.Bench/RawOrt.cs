using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;

namespace Carml.Orleans.Bench;

/// <summary>One in-process ONNX Runtime measurement: callers threads each running batches on one shared session.</summary>
internal sealed record RawResult(string Model, int Batch, int Callers, int IntraOpThreads, double RunsPerSecond, double SamplesPerSecond, double P50Microseconds);

/// <summary>
/// Comparison (a): the runtime alone, in-process, with input and output values allocated once and reused: the most
/// this machine can do with this model, the bar every layer above is measured against.
/// </summary>
internal static class RawOrt
{
    public static RawResult Measure(BenchModel model, int batch, int callers, int intraOpThreads, TimeSpan duration)
    {
        using var options = new Microsoft.ML.OnnxRuntime.SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = intraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        using var session = new InferenceSession(model.Onnx, options);
        var outputNames = session.OutputMetadata.Keys.ToArray();
        var latencies = new List<long>[callers];
        var counts = new long[callers];
        using var go = new Barrier(callers + 1);
        var stopAt = 0L;
        var threads = new Thread[callers];
        for (var c = 0; c < callers; c++)
        {
            var caller = c;
            latencies[c] = new List<long>(1 << 16);
            threads[c] = new Thread(() =>
            {
                var data = new float[batch * model.RowElements];
                for (var i = 0; i < data.Length; i++)
                {
                    data[i] = (i % 1000) / 1000f;
                }

                using var input = OrtValue.CreateTensorValueFromMemory(data, model.Shape(batch));
                using var runOptions = new RunOptions();
                var inputs = new[] { input };
                var inputNames = new[] { model.InputName };
                // Warm-up: first runs allocate the runtime's arenas.
                for (var i = 0; i < 3; i++)
                {
                    using var warm = session.Run(runOptions, inputNames, inputs, outputNames);
                }

                go.SignalAndWait();
                var stop = Volatile.Read(ref stopAt);
                while (true)
                {
                    var start = Stopwatch.GetTimestamp();
                    if (start >= stop)
                    {
                        break;
                    }

                    using (session.Run(runOptions, inputNames, inputs, outputNames))
                    {
                    }

                    latencies[caller].Add(Stopwatch.GetTimestamp() - start);
                    counts[caller]++;
                }
            }) { IsBackground = true };
            threads[c].Start();
        }

        Volatile.Write(ref stopAt, Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency) + Stopwatch.Frequency / 10);
        var begin = Stopwatch.GetTimestamp();
        go.SignalAndWait();
        Volatile.Write(ref stopAt, Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency));
        foreach (var thread in threads)
        {
            thread.Join();
        }

        var seconds = Stopwatch.GetElapsedTime(begin).TotalSeconds;
        var runs = counts.Sum();
        var sorted = latencies.SelectMany(l => l).Order().ToArray();
        var p50 = sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2] * 1e6 / Stopwatch.Frequency;
        return new RawResult(model.Name, batch, callers, intraOpThreads, runs / seconds, runs * batch / seconds, p50);
    }
}

/// <summary>
/// One session kept open across windows, so raw ORT can take its turn in the same rotation as the servers. A window
/// counts images (batch × runs), so its throughput compares with requests of one image.
/// </summary>
internal sealed class RawOrtSession : IDisposable
{
    private readonly BenchModel _model;
    private readonly Microsoft.ML.OnnxRuntime.SessionOptions _options;
    private readonly InferenceSession _session;
    private readonly string[] _outputNames;

    public RawOrtSession(BenchModel model, int intraOpThreads)
    {
        _model = model;
        _options = new Microsoft.ML.OnnxRuntime.SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = intraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        _session = new InferenceSession(model.Onnx, _options);
        _outputNames = [.. _session.OutputMetadata.Keys];
    }

    public Window Window(int batch, int callers, TimeSpan duration)
    {
        var latencies = new List<long>[callers];
        var stop = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var begin = Stopwatch.GetTimestamp();
        var threads = Enumerable.Range(0, callers).Select(c =>
        {
            latencies[c] = [];
            var thread = new Thread(() =>
            {
                var data = new float[batch * _model.RowElements];
                for (var i = 0; i < data.Length; i++)
                {
                    data[i] = (i % 1000) / 1000f;
                }

                using var input = OrtValue.CreateTensorValueFromMemory(data, _model.Shape(batch));
                using var runOptions = new RunOptions();
                var inputs = new[] { input };
                var names = new[] { _model.InputName };
                while (Stopwatch.GetTimestamp() < stop)
                {
                    var start = Stopwatch.GetTimestamp();
                    using (_session.Run(runOptions, names, inputs, _outputNames))
                    {
                    }

                    var elapsed = Stopwatch.GetTimestamp() - start;
                    for (var i = 0; i < batch; i++)
                    {
                        latencies[c].Add(elapsed);
                    }
                }
            }) { IsBackground = true };
            thread.Start();
            return thread;
        }).ToArray();
        foreach (var thread in threads)
        {
            thread.Join();
        }

        var seconds = Stopwatch.GetElapsedTime(begin).TotalSeconds;
        return new Window(seconds, [.. latencies.SelectMany(l => l)], 0, 0, 0, batch, null);
    }

    public void Dispose()
    {
        _session.Dispose();
        _options.Dispose();
    }
}

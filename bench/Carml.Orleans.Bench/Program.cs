using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Carml.Orleans.Gateway.KServe.Grpc;
using Grpc.Net.Client;

// A first closed-loop load generator for the KServe v2 endpoints: N concurrent clients each send one request and
// wait for its answer, for a fixed window after a warm-up. Reports requests/s and latency percentiles.
// Usage: dotnet run -c Release --project bench/Carml.Orleans.Bench -- [--http URL] [--grpc URL] [--model iris]
//        [--concurrency 1,16] [--seconds 10] [--warmup 2] [--batch 1]
var settings = BenchSettings.Parse(args);
var features = Enumerable.Range(0, settings.Batch).SelectMany(_ => new[] { 5.1f, 3.5f, 1.4f, 0.2f }).ToArray();
var json = $$"""{"inputs":[{"name":"features","shape":[{{settings.Batch}},4],"datatype":"FP32","data":[{{string.Join(",", features.Select(f => f.ToString(CultureInfo.InvariantCulture)))}}]}]}""";

Console.WriteLine($"model {settings.Model}, batch {settings.Batch}, window {settings.Seconds}s after {settings.Warmup}s warm-up, {Environment.ProcessorCount} cores");
Console.WriteLine("| protocol | concurrency | requests/s | p50 ms | p90 ms | p99 ms | errors |");
Console.WriteLine("|---|---|---|---|---|---|---|");
foreach (var concurrency in settings.Concurrency)
{
    using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency }) { BaseAddress = settings.Http };
    var httpResult = await Load.RunAsync(concurrency, settings, async ct =>
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync($"/v2/models/{settings.Model}/infer", content, ct);
        await response.Content.ReadAsByteArrayAsync(ct);
        return response.IsSuccessStatusCode;
    });
    Console.WriteLine(httpResult.Row("HTTP/1.1 JSON", concurrency));

    using var channel = GrpcChannel.ForAddress(settings.Grpc);
    var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
    var request = new ModelInferRequest
    {
        ModelName = settings.Model,
        Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { settings.Batch, 4 } } },
        RawInputContents = { Google.Protobuf.ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(features.AsSpan()).ToArray()) },
    };
    var grpcResult = await Load.RunAsync(concurrency, settings, async ct =>
    {
        await client.ModelInferAsync(request, cancellationToken: ct);
        return true;
    });
    Console.WriteLine(grpcResult.Row("gRPC raw", concurrency));
}

internal sealed record BenchSettings(Uri Http, Uri Grpc, string Model, int[] Concurrency, int Seconds, int Warmup, int Batch)
{
    public static BenchSettings Parse(string[] args)
    {
        string Get(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        return new BenchSettings(
            new Uri(Get("--http", "http://127.0.0.1:8000")),
            new Uri(Get("--grpc", "http://127.0.0.1:8001")),
            Get("--model", "iris"),
            Get("--concurrency", "1,16").Split(',').Select(int.Parse).ToArray(),
            int.Parse(Get("--seconds", "10"), CultureInfo.InvariantCulture),
            int.Parse(Get("--warmup", "2"), CultureInfo.InvariantCulture),
            int.Parse(Get("--batch", "1"), CultureInfo.InvariantCulture));
    }
}

internal sealed record LoadResult(long Requests, long Errors, double Seconds, double[] LatenciesMs)
{
    public string Row(string protocol, int concurrency)
    {
        Array.Sort(LatenciesMs);
        double P(double q) => LatenciesMs.Length == 0 ? double.NaN : LatenciesMs[Math.Min(LatenciesMs.Length - 1, (int)(q * LatenciesMs.Length))];
        return string.Create(CultureInfo.InvariantCulture,
            $"| {protocol} | {concurrency} | {Requests / Seconds:F0} | {P(0.50):F2} | {P(0.90):F2} | {P(0.99):F2} | {Errors} |");
    }
}

internal static class Load
{
    public static async Task<LoadResult> RunAsync(int concurrency, BenchSettings settings, Func<CancellationToken, Task<bool>> send)
    {
        using var stop = new CancellationTokenSource();
        var measuring = false;
        var latencies = new List<double>[concurrency];
        long errors = 0;
        var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = new List<double>(100_000);
            while (!stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                bool ok;
                try
                {
                    ok = await send(stop.Token);
                }
                catch (Exception) when (stop.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception)
                {
                    ok = false;
                }

                if (Volatile.Read(ref measuring))
                {
                    mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    if (!ok)
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
            }
        })).ToArray();

        await Task.Delay(TimeSpan.FromSeconds(settings.Warmup));
        Volatile.Write(ref measuring, true);
        var window = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(settings.Seconds));
        Volatile.Write(ref measuring, false);
        var elapsed = window.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        var all = latencies.SelectMany(l => l).ToArray();
        return new LoadResult(all.Length, errors, elapsed, all);
    }
}

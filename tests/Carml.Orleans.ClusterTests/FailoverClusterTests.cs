using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Carml.Orleans.Gateway.KServe.Grpc;
using Carml.Orleans.Onnx.Iris;
using Grpc.Core;
using Grpc.Net.Client;

namespace Carml.Orleans.ClusterTests;

/// <summary>
/// Failover with real processes on 127.0.0.1: the Consul emulator, three silos (two advertising a GPU through
/// <c>Carml:Agent:Gpus</c>, one CPU-only) and a gateway. A GPU-only model with two replicas serves a bounded gRPC load
/// while the GPU silo holding replica 0 is killed with SIGKILL; every request must succeed or, only when its deadline
/// passes, fail with DEADLINE_EXCEEDED or UNAVAILABLE. The figures are printed to the test log.
/// </summary>
public sealed class FailoverClusterTests(ITestOutputHelper output) : ClusterTest("failover")
{
    private const string Model = "iris-failover";
    private const int Requests = 2_000;
    private const int Concurrency = 16;
    private static readonly TimeSpan RequestDeadline = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan WaitTimeout = TimeSpan.FromSeconds(30);
    private static readonly float[] Setosa = [5.1f, 3.5f, 1.4f, 0.2f];


    [Fact]
    public async Task Killing_a_gpu_silo_under_load_loses_no_request_and_the_model_serves_again_from_the_surviving_silo()
    {
        var consul = await StartEmulatorAsync();
        var silos = new[]
        {
            StartSilo("gpu-silo-1", consul, gpu: true),
            StartSilo("gpu-silo-2", consul, gpu: true),
            StartSilo("cpu-silo", consul, gpu: false),
        };
        foreach (var silo in silos)
        {
            await silo.Process.WaitForLineAsync(@"Registered carml-silo as (\S+)", StartTimeout);
        }

        var (gateway, http, grpc) = await StartGatewayAsync(consul, ("Carml__Cluster__ResponseTimeout", "00:00:02"), ("Carml__Cluster__GatewayListRefreshPeriod", "00:00:01"));
        await RegisterIrisAsync(http, Model, "deployment:\n  device: gpu\n  replicas: 2\n");
        using var channel = GrpcChannel.ForAddress(grpc);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        await InferEventuallyAsync(client, WaitTimeout);

        // Warm up every replica (the balancer spreads the load over them), then see where each one landed.
        await RunLoadAsync(client, 200, Concurrency, onCompleted: null);
        Assert.True(await ReportsTwoReplicasAsync(http), $"the model reports two replicas.\n{Outputs()}");
        var placement = await WaitForPlacementAsync(silos, 2);
        output.WriteLine($"placement before the kill: {Describe(placement)}");

        // Replicas of a `device: gpu` model only on silos that advertise a GPU, spread over them.
        Assert.All(placement, p => Assert.True(p.Silo.Gpu, $"replica {p.Replica} is on the CPU-only silo {p.Silo.Name}.\n{Outputs()}"));
        Assert.Equal(2, placement.Select(p => p.Silo).Distinct().Count());
        var victim = placement.Single(p => p.Replica == 0).Silo;
        var survivorsLoadedBefore = silos.Where(s => s != victim).Sum(s => LoadedCount(s, 0));

        // The bounded load; SIGKILL the silo holding replica 0 once a quarter of it is done.
        var killedAt = 0L;
        var results = await RunLoadAsync(client, Requests, Concurrency, completed =>
        {
            if (completed == Requests / 4 && Interlocked.CompareExchange(ref killedAt, Stopwatch.GetTimestamp(), 0) == 0)
            {
                victim.Process.Kill();
            }
        });
        Assert.True(killedAt != 0, "the silo was killed during the load");
        Assert.True(victim.Process.HasExited, $"{victim.Name} is gone");

        var failures = results.Where(r => r.Status != StatusCode.OK).GroupBy(r => r.Status).ToDictionary(g => g.Key, g => g.Count());
        var succeeded = results.Count(r => r.Status == StatusCode.OK);
        var figures = Figures.From(results, killedAt);
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"failover: sent {results.Count}, succeeded {succeeded}, failed {results.Count - succeeded} " +
            $"({(failures.Count == 0 ? "none" : string.Join(", ", failures.Select(f => $"{f.Key} {f.Value}")))}); killed {victim.Name} after {Requests / 4} requests; " +
            $"first success of a request started after the kill: {Seconds(figures.FirstSuccessAfterKill)}; p99 back to normal for requests started: {Seconds(figures.NormalAfterKill)} " +
            $"(p99 before the kill {figures.BaselineP99.TotalMilliseconds:F1} ms, normal = p99 under {figures.NormalP99.TotalMilliseconds:F1} ms and no failure among the requests started in a {Figures.Slice.TotalMilliseconds:F0} ms slice); " +
            $"max latency {figures.MaxLatency.TotalMilliseconds:F0} ms");
        output.WriteLine(summary);
        Console.WriteLine(summary);
        foreach (var line in gateway.Output.Split('\n').Where(l => l.Contains("Gave up", StringComparison.Ordinal)))
        {
            output.WriteLine(line);
        }

        Assert.Equal(Requests, results.Count);
        Assert.All(failures.Keys, code => Assert.True(
            code is StatusCode.DeadlineExceeded or StatusCode.Unavailable,
            $"A request failed with {code}: only DEADLINE_EXCEEDED or UNAVAILABLE are allowed.\n{summary}\n{Outputs()}"));
        Assert.True(figures.FirstSuccessAfterKill is not null, $"No request started after the kill succeeded.\n{summary}\n{Outputs()}");

        // The model serves again from the surviving silo(s): requests succeed, and replica 0 was activated again there.
        await InferEventuallyAsync(client, WaitTimeout);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(StatusCode.OK, (await InferAsync(client)).Status);
        }

        var deadline = Stopwatch.StartNew();
        while (silos.Where(s => s != victim).Sum(s => LoadedCount(s, 0)) == survivorsLoadedBefore)
        {
            Assert.True(deadline.Elapsed < WaitTimeout, $"Within {WaitTimeout.TotalSeconds} s: replica 0 is activated again on a surviving silo.\n{Outputs()}");
            Assert.Equal(StatusCode.OK, (await InferAsync(client)).Status);
            await Task.Delay(50, Ct);
        }

        var reloaded = silos.Where(s => s != victim && LoadedCount(s, 0) > 0).ToArray();
        output.WriteLine($"replica 0 activated again on {string.Join(", ", reloaded.Select(s => s.Name))}");
        Assert.All(reloaded, s => Assert.True(s.Gpu, $"replica 0 came back on the CPU-only silo {s.Name}"));
    }

    /// <summary>How many times the silo logged loading replica <paramref name="replica"/> of the model.</summary>
    private static int LoadedCount(Silo silo, int replica) =>
        Regex.Matches(silo.Process.Output, $@"Replica {Regex.Escape(Model)}/1/{replica} loaded").Count;

    private async Task<IReadOnlyList<(int Replica, Silo Silo)>> WaitForPlacementAsync(IReadOnlyList<Silo> silos, int replicas)
    {
        IReadOnlyList<(int Replica, Silo Silo)> found = [];
        await WaitUntilAsync(
            () =>
            {
                found = [.. Enumerable.Range(0, replicas).SelectMany(r => silos.Where(s => LoadedCount(s, r) > 0).Select(s => (r, s)))];
                return found.Select(p => p.Replica).Distinct().Count() == replicas;
            },
            $"{replicas} replica(s) of {Model} are loaded",
            Outputs);
        return found;
    }

    /// <summary>Whether the model's status reports two replicas (the management API's version resource, once it carries them).</summary>
    private async Task<bool> ReportsTwoReplicasAsync(Uri http)
    {
        var body = await Http.GetStringAsync(new Uri(http, $"api/models/{Model}/versions/1"), Ct);
        output.WriteLine($"model status: {body}");
        var root = JsonDocument.Parse(body).RootElement;
        return (root.TryGetProperty("replica_count", out var count) && count.ValueKind == JsonValueKind.Number && count.GetInt32() == 2)
            || (root.TryGetProperty("replicas", out var list) && list.ValueKind == JsonValueKind.Array && list.GetArrayLength() == 2);
    }

    private static async Task<List<Outcome>> RunLoadAsync(GRPCInferenceService.GRPCInferenceServiceClient client, int requests, int concurrency, Action<int>? onCompleted)
    {
        var outcomes = new List<Outcome>(requests);
        var next = -1;
        var completed = 0;
        var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) < requests)
            {
                var outcome = await InferAsync(client);
                lock (outcomes)
                {
                    outcomes.Add(outcome);
                }

                onCompleted?.Invoke(Interlocked.Increment(ref completed));
            }
        }));
        await Task.WhenAll(workers);
        return outcomes;
    }

    /// <summary>One setosa row over gRPC with a deadline; a success must carry the right label.</summary>
    private static async Task<Outcome> InferAsync(GRPCInferenceService.GRPCInferenceServiceClient client)
    {
        var request = new ModelInferRequest { ModelName = Model };
        var input = new ModelInferRequest.Types.InferInputTensor { Name = "features", Datatype = "FP32", Shape = { 1, 4 }, Contents = new InferTensorContents() };
        input.Contents.Fp32Contents.Add(Setosa);
        request.Inputs.Add(input);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var response = await client.ModelInferAsync(request, deadline: DateTime.UtcNow + RequestDeadline, cancellationToken: Ct);
            var label = response.Outputs.Select((o, i) => (o.Name, i)).Single(o => o.Name == "label").i;
            var value = BitConverter.ToInt64(response.RawOutputContents[label].Span);
            return new Outcome(started, Stopwatch.GetTimestamp(), value == 0 ? StatusCode.OK : StatusCode.DataLoss);
        }
        catch (RpcException e)
        {
            return new Outcome(started, Stopwatch.GetTimestamp(), e.StatusCode);
        }
    }

    private async Task InferEventuallyAsync(GRPCInferenceService.GRPCInferenceServiceClient client, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        var last = StatusCode.Unknown;
        while (deadline.Elapsed < timeout)
        {
            last = (await InferAsync(client)).Status;
            if (last == StatusCode.OK)
            {
                return;
            }

            await Task.Delay(200, Ct);
        }

        throw new TimeoutException($"Within {timeout.TotalSeconds} s the model did not answer (last status {last}).\n{Outputs()}");
    }

    private static async Task WaitUntilAsync(Func<bool> done, string what, Func<string> outputs)
    {
        var deadline = Stopwatch.StartNew();
        while (!done())
        {
            if (deadline.Elapsed > WaitTimeout)
            {
                throw new TimeoutException($"Within {WaitTimeout.TotalSeconds} s: {what}.\n{outputs()}");
            }

            await Task.Delay(100, Ct);
        }
    }

    private Silo StartSilo(string name, Uri consul, bool gpu)
    {
        // Fast failure detection, so the killed silo is declared dead within a few seconds (production keeps Orleans' defaults).
        (string, string)[] settings =
        [
            ("Carml__Membership__ProbeTimeout", "00:00:01"),
            ("Carml__Membership__NumMissedProbesLimit", "2"),
            ("Carml__Membership__NumVotesForDeathDeclaration", "1"),
            ("Carml__Membership__TableRefreshTimeout", "00:00:02"),
            ("Carml__Messaging__ResponseTimeout", "00:00:05"),
        ];
        if (gpu)
        {
            settings = [.. settings, ("Carml__Agent__Gpus__0__Name", "Test GPU (configured)"), ("Carml__Agent__Gpus__0__MemoryMegabytes", "16384")];
        }

        return new Silo(name, gpu, StartSilo(name, consul, settings));
    }

    private static string Describe(IEnumerable<(int Replica, Silo Silo)> placement) =>
        string.Join(", ", placement.Select(p => $"replica {p.Replica} on {p.Silo.Name} ({(p.Silo.Gpu ? "GPU" : "CPU")})"));

    private static string Seconds(TimeSpan? time) => time is { } t ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:F2} s") : "never";


    private sealed record Silo(string Name, bool Gpu, ClusterProcess Process);

    private readonly record struct Outcome(long Started, long Finished, StatusCode Status)
    {
        public TimeSpan Latency => Stopwatch.GetElapsedTime(Started, Finished);
    }

    /// <summary>Recovery figures from the requests' start and end times around the kill.</summary>
    private sealed record Figures(TimeSpan? FirstSuccessAfterKill, TimeSpan? NormalAfterKill, TimeSpan BaselineP99, TimeSpan NormalP99, TimeSpan MaxLatency)
    {
        /// <summary>Requests are grouped by start time in slices this long; a slice's p99 is compared with the one before the kill.</summary>
        public static readonly TimeSpan Slice = TimeSpan.FromMilliseconds(250);

        public static Figures From(IReadOnlyList<Outcome> outcomes, long killedAt)
        {
            var before = outcomes.Where(o => o.Finished <= killedAt).Select(o => o.Latency).Order().ToArray();
            var baseline = before.Length == 0 ? TimeSpan.Zero : before[(int)Math.Min(before.Length - 1, Math.Ceiling(before.Length * 0.99) - 1)];
            var normal = TimeSpan.FromTicks(Math.Max(baseline.Ticks * 3, TimeSpan.FromMilliseconds(50).Ticks));
            var after = outcomes.Where(o => o.Started >= killedAt).OrderBy(o => o.Started).ToArray();
            var firstSuccess = after.Where(o => o.Status == StatusCode.OK).Select(o => (TimeSpan?)Stopwatch.GetElapsedTime(killedAt, o.Finished)).Min();

            // The first slice of time after the kill whose requests (by start time) all succeed with a p99 within the bound.
            TimeSpan? recovered = null;
            foreach (var slice in after.GroupBy(o => (long)(Stopwatch.GetElapsedTime(killedAt, o.Started) / Slice)).OrderBy(g => g.Key))
            {
                var latencies = slice.Select(o => o.Latency).Order().ToArray();
                if (slice.All(o => o.Status == StatusCode.OK) && latencies[(int)Math.Ceiling(latencies.Length * 0.99) - 1] <= normal)
                {
                    recovered = slice.Key * Slice;
                    break;
                }
            }

            return new Figures(firstSuccess, recovered, baseline, normal, outcomes.Max(o => o.Latency));
        }
    }
}

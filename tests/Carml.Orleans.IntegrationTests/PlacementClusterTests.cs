using Carml.Orleans.Core;
using Carml.Orleans.Grains;
using Carml.Orleans.Grains.Placement;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Carml.Orleans.Tests;

/// <summary>
/// Several silos in one <see cref="InProcessTestCluster"/>, each advertising its hardware through silo metadata; the
/// GPU ones by the <c>Carml:Agent:Gpus</c> override, as an operator (or the multi-process cluster test) configures it.
/// The silos share the SQLite grain store and the content store, as silos on one host do.
/// </summary>
public sealed class PlacementCluster : IAsyncDisposable
{
    private readonly TempDirectory _data = new();
    private readonly IReadOnlyList<long> _gpuMemoryMiB;
    private int _started;

    private PlacementCluster(IReadOnlyList<long> gpuMemoryMiB) => _gpuMemoryMiB = gpuMemoryMiB;

    public InProcessTestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.Client;

    /// <summary>The silo addresses that advertise a GPU, as <c>SiloAddress.ToString()</c>.</summary>
    public HashSet<string> GpuSilos { get; } = [];

    /// <summary>Starts one silo per entry: 0 = a CPU silo, otherwise a GPU silo with that much memory (MiB).</summary>
    public static async Task<PlacementCluster> StartAsync(params long[] gpuMemoryMiB)
    {
        var cluster = new PlacementCluster(gpuMemoryMiB);
        var builder = new InProcessTestClusterBuilder((short)gpuMemoryMiB.Length);
        builder.ConfigureSilo((options, silo) => cluster.Configure(silo));
        cluster.Cluster = builder.Build();
        await cluster.Cluster.DeployAsync();
        await cluster.WaitForMetadataAsync();
        return cluster;
    }

    /// <summary>Starts one more silo (0 = CPU, else GPU memory in MiB) and waits until the others see its capabilities.</summary>
    public async Task StartSiloAsync(long gpuMemoryMiB)
    {
        _extra.Enqueue(gpuMemoryMiB);
        await Cluster.StartAdditionalSiloAsync();
        await WaitForMetadataAsync();
    }

    private readonly Queue<long> _extra = new();

    private void Configure(ISiloBuilder silo)
    {
        var index = Interlocked.Increment(ref _started) - 1;
        var gpu = index < _gpuMemoryMiB.Count ? _gpuMemoryMiB[index] : _extra.Dequeue();
        var settings = new Dictionary<string, string?>
        {
            ["Carml:Silo:DataDirectory"] = _data.Path,
            ["Carml:Placement:UnschedulableRetryInterval"] = "00:00:00.200",
            ["Carml:Agent:HeartbeatInterval"] = "00:00:01",
        };
        if (gpu > 0)
        {
            settings["Carml:Agent:Gpus:0:Name"] = "Test GPU";
            settings["Carml:Agent:Gpus:0:MemoryMegabytes"] = gpu.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings["Carml:Agent:Gpus:0:CudaVersion"] = "12.4";
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        silo.AddSqliteGrainStorage(StorageNames.Models, o => o.DatabasePath = Path.Combine(_data.Path, "carml.db"));
        silo.Services.Configure<ContentStoreOptions>(o => o.Root = Path.Combine(_data.Path, "artifacts"));
        silo.Services.AddCarmlGrainServices(configuration);
        silo.UseCarmlSiloMetadata(configuration);
    }

    /// <summary>Each silo's capabilities as it advertises them.</summary>
    public IReadOnlyList<SiloCapabilities> Capabilities() =>
        Cluster.Silos.Select(h => h.ServiceProvider.GetRequiredService<SiloCapabilityView>().For(h.SiloAddress)).ToArray();

    public ContentStore Store => Cluster.Silos[0].ServiceProvider.GetRequiredService<ContentStore>();

    /// <summary>Waits (bounded) until every silo's capability view sees every active silo with the capabilities it advertises.</summary>
    private async Task WaitForMetadataAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            GpuSilos.Clear();
            var views = Cluster.Silos.Select(s => s.ServiceProvider.GetRequiredService<SiloCapabilityView>().ActiveSilos()).ToArray();
            foreach (var handle in Cluster.Silos)
            {
                var own = handle.ServiceProvider.GetRequiredService<SiloCapabilityView>().For(handle.SiloAddress);
                if (own.HasGpu)
                {
                    GpuSilos.Add(own.Silo);
                }
            }

            var consistent = views.All(v => v.Count == Cluster.Silos.Count && v.Count(s => s.HasGpu) == GpuSilos.Count && v.Where(s => s.HasGpu).All(s => GpuSilos.Contains(s.Silo)));
            if (consistent)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The silos did not learn each other's capabilities within 60 s: {string.Join(" | ", views.Select(v => string.Join(", ", v.Select(s => s.Describe()))))}");
            }

            await Task.Delay(100);
        }
    }

    public async Task<(ModelManifest Manifest, ModelArtifact Artifact)> IrisAsync(string name, string deployment)
    {
        var stored = await Store.PutAsync(TestModels.Iris.OnnxBytes, TestContext.Current.CancellationToken);
        var manifest = ManifestReader.Parse(TestModels.IrisManifest(name, "1") + "\ndeployment: " + deployment + "\n");
        return (manifest, new ModelArtifact(stored.Sha256, stored.SizeBytes));
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        _data.Dispose();
    }
}

public sealed class PlacementClusterTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static InferenceRequest IrisRequest()
    {
        var features = TestModels.IrisRows[0].Features;
        return new InferenceRequest([new InferenceTensor("features", TensorDatatype.FP32, [1, 4], KServeGrpcTests.FloatBytes(features))]);
    }

    private static async Task<ModelStatus> WaitForAsync(IModelGrain model, Func<ModelStatus, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var status = await model.GetStatusAsync() ?? throw new InvalidOperationException("The model is not registered.");
            if (condition(status))
            {
                return status;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Waited 60 s for {what}; the model is {status.State}: {status.Reason}");
            }

            await Task.Delay(100, Ct);
        }
    }

    [Fact]
    public async Task Gpu_model_replicas_land_only_on_gpu_silos_one_per_silo_and_serve()
    {
        await using var cluster = await PlacementCluster.StartAsync(0, 24576, 16384);
        var (manifest, artifact) = await cluster.IrisAsync("place-gpu", "{device: gpu, replicas: 2}");

        var status = await cluster.Grains.GetGrain<IModelGrain>("place-gpu/1").RegisterAsync(manifest, artifact);

        Assert.Equal(ModelState.Ready, status.State);
        Assert.Equal(2, status.ReplicaCount);
        Assert.All(status.Replicas, r => Assert.Equal(ModelState.Ready, r.State));
        Assert.All(status.Replicas, r => Assert.Contains(r.SiloAddress!, cluster.GpuSilos));
        Assert.Equal(2, status.Replicas.Select(r => r.SiloAddress).Distinct().Count());
        // The CPU build of ONNX Runtime has no CUDA provider: the GPU silo runs it on CPU and says so.
        Assert.All(status.Replicas, r => Assert.Equal("CPUExecutionProvider", r.ExecutionProvider));
        for (var i = 0; i < 2; i++)
        {
            var response = await cluster.Grains.GetGrain<IModelReplicaGrain>($"place-gpu/1/{i}").InferAsync(IrisRequest(), Ct);
            Assert.Equal(12, response.Outputs[0].Data.Length);
        }
    }

    [Fact]
    public async Task Min_gpu_memory_keeps_replicas_off_smaller_gpus_and_a_model_no_gpu_can_hold_is_unschedulable()
    {
        await using var cluster = await PlacementCluster.StartAsync(0, 24576, 8192);
        var large = cluster.Capabilities().Single(c => c.GpuMemoryBytes == 24576L * 1024 * 1024).Silo;
        var (big, bigArtifact) = await cluster.IrisAsync("place-big", "{device: gpu, min_gpu_memory_mb: 16384, replicas: 2}");
        var (huge, hugeArtifact) = await cluster.IrisAsync("place-huge", "{device: gpu, min_gpu_memory_mb: 102400}");

        var bigStatus = await cluster.Grains.GetGrain<IModelGrain>("place-big/1").RegisterAsync(big, bigArtifact);
        var hugeStatus = await cluster.Grains.GetGrain<IModelGrain>("place-huge/1").RegisterAsync(huge, hugeArtifact);

        Assert.Equal(ModelState.Ready, bigStatus.State);
        Assert.All(bigStatus.Replicas, r => Assert.Equal(large, r.SiloAddress));
        Assert.Equal(ModelState.Unschedulable, hugeStatus.State);
        Assert.StartsWith("needs a GPU silo with ≥ 102400 MiB of GPU memory; the cluster has none: ", hugeStatus.Reason);
        Assert.Contains("gpu (1 × 24576 MiB)", hugeStatus.Reason);
        Assert.Contains("gpu (1 × 8192 MiB)", hugeStatus.Reason);
        Assert.Contains(" cpu", hugeStatus.Reason);
    }

    [Fact]
    public async Task A_gpu_model_whose_only_gpu_silo_leaves_reports_unschedulable_instead_of_ready()
    {
        await using var cluster = await PlacementCluster.StartAsync(0, 16384);
        var (manifest, artifact) = await cluster.IrisAsync("gpu-gone", "{device: gpu}");
        var model = cluster.Grains.GetGrain<IModelGrain>("gpu-gone/1");
        Assert.Equal(ModelState.Ready, (await model.RegisterAsync(manifest, artifact)).State);

        var gpuSilo = cluster.Cluster.Silos.Single(s => cluster.GpuSilos.Contains(s.SiloAddress.ToString()));
        await cluster.Cluster.StopSiloAsync(gpuSilo, Ct);
        var gone = await WaitForAsync(model, s => s.State == ModelState.Unschedulable, "the model to report that no GPU silo is left");

        Assert.Matches(@"^needs a GPU silo; the cluster has none: silo \S+ cpu$", gone.Reason);
    }

    [Fact]
    public async Task Gpu_model_on_a_cpu_only_cluster_is_unschedulable_at_once_and_loads_when_a_gpu_silo_joins()
    {
        await using var cluster = await PlacementCluster.StartAsync(0);
        var (manifest, artifact) = await cluster.IrisAsync("place-later", "{device: gpu}");
        var model = cluster.Grains.GetGrain<IModelGrain>("place-later/1");

        var status = await model.RegisterAsync(manifest, artifact);

        Assert.Equal(ModelState.Unschedulable, status.State);
        Assert.Matches(@"^needs a GPU silo; the cluster has none: silo \S+ cpu$", status.Reason);
        Assert.Equal(["1"], await cluster.Grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync("place-later"));

        // A request to its replica fails at once (the placement director refuses it), never hangs; so does one whose
        // caller attached no placement (the replica, placed on a CPU silo, refuses to load).
        ReplicaPlacement.For(manifest).Apply();
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => cluster.Grains.GetGrain<IModelReplicaGrain>("place-later/1/0").InferAsync(IrisRequest(), Ct));
        RequestContext.Clear();
        var error = Assert.IsType<ModelException>(refused);
        Assert.Equal(ModelErrorKind.Unavailable, error.Kind);
        Assert.Contains("needs a GPU silo", error.Message);
        var unplaced = await Assert.ThrowsAsync<ModelException>(() => cluster.Grains.GetGrain<IModelReplicaGrain>("place-later/1/0").InferAsync(IrisRequest(), Ct));
        Assert.Equal(ModelErrorKind.Unavailable, unplaced.Kind);
        Assert.Contains("cannot run on silo", unplaced.Message);

        await cluster.StartSiloAsync(16384);
        var ready = await WaitForAsync(model, s => s.State == ModelState.Ready, "the model to load on the GPU silo that joined");

        Assert.Contains(Assert.Single(ready.Replicas).SiloAddress!, cluster.GpuSilos);
        var response = await cluster.Grains.GetGrain<IModelReplicaGrain>("place-later/1/0").InferAsync(IrisRequest(), Ct);
        Assert.Equal(12, response.Outputs[0].Data.Length);
    }

    [Fact]
    public async Task Scaling_loads_new_replicas_spread_over_silos_and_unloads_the_extra_ones()
    {
        await using var cluster = await PlacementCluster.StartAsync(0, 0, 0);
        var (manifest, artifact) = await cluster.IrisAsync("place-scale", "{device: cpu}");
        var model = cluster.Grains.GetGrain<IModelGrain>("place-scale/1");
        await model.RegisterAsync(manifest, artifact);

        var up = await model.ScaleAsync(3);

        Assert.Equal(3, up.ReplicaCount);
        Assert.All(up.Replicas, r => Assert.Equal(ModelState.Ready, r.State));
        Assert.Equal(3, up.Replicas.Select(r => r.SiloAddress).Distinct().Count());
        Assert.Equal(3, (await model.GetRegistrationAsync())!.ReplicaCount);

        var down = await model.ScaleAsync(1);

        Assert.Equal(1, down.ReplicaCount);
        Assert.Equal(0, Assert.Single(down.Replicas).Index);
        // A request that still reaches a replica beyond the count (a stale route) is refused as Unavailable, so a router
        // tries another replica.
        var stale = await Assert.ThrowsAsync<ModelException>(() => cluster.Grains.GetGrain<IModelReplicaGrain>("place-scale/1/2").InferAsync(IrisRequest(), Ct));
        Assert.Equal(ModelErrorKind.Unavailable, stale.Kind);
        Assert.Equal(0, (await cluster.Grains.GetGrain<IModelReplicaGrain>("place-scale/1/2").GetStatisticsAsync()).Requests);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65)]
    public async Task Scaling_outside_one_to_sixty_four_is_invalid(int replicas)
    {
        await using var cluster = await PlacementCluster.StartAsync(0);
        var (manifest, artifact) = await cluster.IrisAsync("place-bad-scale", "{device: cpu}");
        var model = cluster.Grains.GetGrain<IModelGrain>("place-bad-scale/1");
        await model.RegisterAsync(manifest, artifact);

        var error = await Assert.ThrowsAsync<ModelException>(() => model.ScaleAsync(replicas));

        Assert.Equal(ModelErrorKind.InvalidArgument, error.Kind);
        Assert.Equal(1, (await model.GetStatusAsync())!.ReplicaCount);
    }

    [Fact]
    public async Task A_replica_activated_by_a_request_loads_itself_and_reports_to_the_model()
    {
        await using var cluster = await PlacementCluster.StartAsync(0, 0);
        var (manifest, artifact) = await cluster.IrisAsync("place-self", "{device: cpu, replicas: 2}");
        var model = cluster.Grains.GetGrain<IModelGrain>("place-self/1");
        await model.RegisterAsync(manifest, artifact);
        var replica = cluster.Grains.GetGrain<IModelReplicaGrain>("place-self/1/1");

        // As when its silo dies: the activation goes, and the next request creates a fresh one that has nothing loaded.
        await cluster.Cluster.DeactivateAsync(replica);
        var unloaded = await WaitForAsync(model, s => s.Replicas[1].State == ModelState.Registered, "replica 1 to report that it was unloaded");
        Assert.StartsWith("unloaded (", unloaded.Replicas[1].Reason);
        Assert.Equal(ModelState.Ready, unloaded.State);
        var response = await replica.InferAsync(IrisRequest(), Ct);

        Assert.Equal(12, response.Outputs[0].Data.Length);
        var status = await WaitForAsync(model, s => s.Replicas[1].State == ModelState.Ready, "replica 1 to report that it reloaded");
        Assert.NotNull(status.Replicas[1].SiloAddress);
        Assert.Equal(ModelState.Ready, status.State);
    }

    [Fact]
    public async Task A_model_grain_that_activates_again_brings_its_replica_set_back_without_a_request()
    {
        await using var cluster = await PlacementCluster.StartAsync(0, 16384, 16384);
        var (manifest, artifact) = await cluster.IrisAsync("place-heal", "{device: gpu, replicas: 2}");
        var model = cluster.Grains.GetGrain<IModelGrain>("place-heal/1");
        await model.RegisterAsync(manifest, artifact);

        // As when the silos holding the model grain and its replicas fail: every activation goes.
        await cluster.Cluster.DeactivateAsync(cluster.Grains.GetGrain<IModelReplicaGrain>("place-heal/1/0"));
        await cluster.Cluster.DeactivateAsync(cluster.Grains.GetGrain<IModelReplicaGrain>("place-heal/1/1"));
        await cluster.Cluster.DeactivateAsync(model);
        var healed = await WaitForAsync(model, s => s.Replicas.Count == 2 && s.Replicas.All(r => r.State == ModelState.Ready), "the replica set to load again");

        Assert.All(healed.Replicas, r => Assert.Contains(r.SiloAddress!, cluster.GpuSilos));
        Assert.Equal(2, healed.Replicas.Select(r => r.SiloAddress).Distinct().Count());
        var statistics = await cluster.Grains.GetGrain<IModelReplicaGrain>("place-heal/1/1").GetStatisticsAsync();
        Assert.Equal(0, statistics.Requests);
    }
}

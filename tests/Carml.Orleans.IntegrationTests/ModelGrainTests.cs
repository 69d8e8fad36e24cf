using Carml.Orleans.Core;
using Carml.Orleans.Grains;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Carml.Orleans.Tests;

/// <summary>A silo on <see cref="InProcessTestCluster"/> with the real SQLite store and content store.</summary>
public sealed class ModelClusterFixture : IAsyncLifetime
{
    private readonly TempDirectory _data = new();

    public InProcessTestCluster Cluster { get; private set; } = null!;

    public ContentStore Store => Cluster.Silos[0].ServiceProvider.GetRequiredService<ContentStore>();

    public async ValueTask InitializeAsync()
    {
        var builder = new InProcessTestClusterBuilder(1);
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Carml:Silo:DataDirectory"] = _data.Path })
            .Build();
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddSqliteGrainStorage(StorageNames.Models, o => o.DatabasePath = Path.Combine(_data.Path, "carml.db"));
            silo.Services.Configure<ContentStoreOptions>(o => o.Root = Path.Combine(_data.Path, "artifacts"));
            silo.Services.AddCarmlGrainServices(configuration);
        });
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        _data.Dispose();
    }
}

public sealed class ModelGrainTests(ModelClusterFixture fixture) : IClassFixture<ModelClusterFixture>
{
    private IGrainFactory Grains => fixture.Cluster.Client;

    private async Task<(ModelManifest Manifest, ModelArtifact Artifact)> IrisAsync(string name, string version = "1")
    {
        var stored = await fixture.Store.PutAsync(TestModels.Iris.OnnxBytes, TestContext.Current.CancellationToken);
        var manifest = ManifestReader.Parse(TestModels.IrisManifest(name, version));
        return (manifest, new ModelArtifact(stored.Sha256, stored.SizeBytes));
    }

    [Fact]
    public async Task Register_loads_the_model_and_records_it_in_the_catalog()
    {
        var (manifest, artifact) = await IrisAsync("grain-iris");

        var status = await Grains.GetGrain<IModelGrain>("grain-iris/1").RegisterAsync(manifest, artifact);

        Assert.Equal(ModelState.Ready, status.State);
        Assert.Equal("CPUExecutionProvider", status.ExecutionProvider);
        Assert.Equal(["1"], await Grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync("grain-iris"));
    }

    [Fact]
    public async Task Replica_infers_with_raw_tensor_bytes_and_reports_timings()
    {
        var (manifest, artifact) = await IrisAsync("grain-infer");
        await Grains.GetGrain<IModelGrain>("grain-infer/1").RegisterAsync(manifest, artifact);
        var features = TestModels.IrisRows[100].Features;
        var input = new InferenceTensor("features", TensorDatatype.FP32, [1, 4], KServeGrpcTests.FloatBytes(features));

        var response = await Grains.GetGrain<IModelReplicaGrain>("grain-infer/1/0").InferAsync(new InferenceRequest([input]) { Id = "g1" }, TestContext.Current.CancellationToken);

        Assert.Equal("g1", response.Id);
        var probabilities = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(response.Outputs[0].Data).ToArray();
        var expected = TestModels.Iris.Model.PredictProbabilities(features);
        Assert.Equal(expected.Length, probabilities.Length);
        for (var c = 0; c < expected.Length; c++)
        {
            Assert.Equal(expected[c], probabilities[c], 1e-5f);
        }

        Assert.True(response.Timings.ComputeMicroseconds > 0);
    }

    [Fact]
    public async Task Replica_refuses_an_invalid_request_with_invalid_argument()
    {
        var (manifest, artifact) = await IrisAsync("grain-bad");
        await Grains.GetGrain<IModelGrain>("grain-bad/1").RegisterAsync(manifest, artifact);
        var input = new InferenceTensor("features", TensorDatatype.FP64, [1, 4], new byte[32]);

        var error = await Assert.ThrowsAsync<ModelException>(() => Grains.GetGrain<IModelReplicaGrain>("grain-bad/1/0").InferAsync(new InferenceRequest([input]), TestContext.Current.CancellationToken));

        Assert.Equal(ModelErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("datatype FP64 does not match the model's FP32", error.Message);
    }

    [Fact]
    public async Task Replica_of_an_unregistered_model_is_not_found()
    {
        var input = new InferenceTensor("features", TensorDatatype.FP32, [1, 4], new byte[16]);

        var error = await Assert.ThrowsAsync<ModelException>(() => Grains.GetGrain<IModelReplicaGrain>("never/1/0").InferAsync(new InferenceRequest([input]), TestContext.Current.CancellationToken));

        Assert.Equal(ModelErrorKind.NotFound, error.Kind);
    }

    [Fact]
    public async Task Mismatched_file_is_refused_and_nothing_is_recorded()
    {
        var (manifest, artifact) = await IrisAsync("grain-mismatch");
        var wrong = manifest with { Inputs = [new TensorSpec("features", TensorDatatype.FP32, [-1, 5])] };

        var error = await Assert.ThrowsAsync<ModelException>(() => Grains.GetGrain<IModelGrain>("grain-mismatch/1").RegisterAsync(wrong, artifact));

        Assert.Contains("input 'features': dimension 1 is 5 in the manifest but 4 in the model file [-1,4]", error.Problems);
        Assert.Null(await Grains.GetGrain<IModelGrain>("grain-mismatch/1").GetStatusAsync());
        Assert.Empty(await Grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync("grain-mismatch"));
    }

    [Fact]
    public async Task Delete_unloads_and_forgets_the_version()
    {
        var (manifest, artifact) = await IrisAsync("grain-delete");
        var model = Grains.GetGrain<IModelGrain>("grain-delete/1");
        await model.RegisterAsync(manifest, artifact);

        Assert.True(await model.DeleteAsync());

        Assert.False(await model.DeleteAsync());
        Assert.Null(await model.GetStatusAsync());
        var input = new InferenceTensor("features", TensorDatatype.FP32, [1, 4], new byte[16]);
        var error = await Assert.ThrowsAsync<ModelException>(() => Grains.GetGrain<IModelReplicaGrain>("grain-delete/1/0").InferAsync(new InferenceRequest([input]), TestContext.Current.CancellationToken));
        Assert.Equal(ModelErrorKind.NotFound, error.Kind);
    }

    [Fact]
    public async Task A_registration_refused_for_a_missing_file_succeeds_once_the_file_is_stored()
    {
        var bytes = TestModels.TypedModel($"late_{Guid.NewGuid():N}");
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        var manifest = ManifestReader.Parse(TestModels.TypedManifest("grain-late"));
        var model = Grains.GetGrain<IModelGrain>("grain-late/1");

        var missing = await Assert.ThrowsAsync<ModelException>(() => model.RegisterAsync(manifest, new ModelArtifact(sha, bytes.Length)));
        await fixture.Store.PutAsync(bytes, TestContext.Current.CancellationToken);
        var status = await model.RegisterAsync(manifest, new ModelArtifact(sha, bytes.Length));

        Assert.Equal(ModelErrorKind.InvalidArgument, missing.Kind);
        Assert.Equal(ModelState.Ready, status.State);
    }

    [Fact]
    public async Task Manifest_naming_another_model_is_refused()
    {
        var (manifest, artifact) = await IrisAsync("grain-a");

        var error = await Assert.ThrowsAsync<ModelException>(() => Grains.GetGrain<IModelGrain>("grain-b/1").RegisterAsync(manifest, artifact));

        Assert.Equal(ModelErrorKind.InvalidArgument, error.Kind);
    }
}

using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Runtime;
using Orleans.TestingHost;

namespace Carml.Orleans.Storage.Tests;

public interface IModelRegistrationGrain : IGrainWithStringKey
{
    Task RegisterAsync(string modelUri, int revision);

    Task<ModelRegistrationState> GetAsync();

    Task<bool> HasRecordAsync();

    Task ForgetAsync();
}

/// <summary>A grain whose state lives in the SQLite provider named "store".</summary>
public sealed class ModelRegistrationGrain(
    [PersistentState("state", "store")] IPersistentState<ModelRegistrationState> registration) : Grain, IModelRegistrationGrain
{
    public async Task RegisterAsync(string modelUri, int revision)
    {
        registration.State.ModelUri = modelUri;
        registration.State.Revision = revision;
        registration.State.Tags.Add($"rev-{revision}");
        await registration.WriteStateAsync();
    }

    public Task<ModelRegistrationState> GetAsync() => Task.FromResult(registration.State);

    public Task<bool> HasRecordAsync() => Task.FromResult(registration.RecordExists);

    public Task ForgetAsync() => registration.ClearStateAsync();
}

public interface IDefaultStoreGrain : IGrainWithIntegerKey
{
    Task SetAsync(string modelUri);

    Task<string?> GetAsync();
}

/// <summary>A grain whose state names no provider, so it uses the default one.</summary>
public sealed class DefaultStoreGrain([PersistentState("state")] IPersistentState<ModelRegistrationState> registration) : Grain, IDefaultStoreGrain
{
    public async Task SetAsync(string modelUri)
    {
        registration.State.ModelUri = modelUri;
        await registration.WriteStateAsync();
    }

    public Task<string?> GetAsync() => Task.FromResult(registration.State.ModelUri);
}

public sealed class SqliteGrainStorageClusterTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task State_written_by_a_grain_survives_a_cluster_restart_on_the_same_database_file()
    {
        var databasePath = _directory.PathOf("cluster.db");

        await using (var first = await StartClusterAsync(databasePath))
        {
            Assert.True(File.Exists(databasePath), "the silo lifecycle should create the database before any grain runs");
            await first.Client.GetGrain<IModelRegistrationGrain>("resnet50").RegisterAsync("file:///models/resnet50.onnx", 1);
            await first.Client.GetGrain<IModelRegistrationGrain>("resnet50").RegisterAsync("file:///models/resnet50-v2.onnx", 2);
            await first.Client.GetGrain<IDefaultStoreGrain>(7).SetAsync("file:///models/bert.onnx");
            await first.StopAllSilosAsync(TestContext.Current.CancellationToken);
        }

        await using var second = await StartClusterAsync(databasePath);
        var restored = await second.Client.GetGrain<IModelRegistrationGrain>("resnet50").GetAsync();

        Assert.Equal("file:///models/resnet50-v2.onnx", restored.ModelUri);
        Assert.Equal(2, restored.Revision);
        Assert.Equal(["rev-1", "rev-2"], restored.Tags);
        Assert.True(await second.Client.GetGrain<IModelRegistrationGrain>("resnet50").HasRecordAsync());
        Assert.Equal("file:///models/bert.onnx", await second.Client.GetGrain<IDefaultStoreGrain>(7).GetAsync());
        Assert.False(await second.Client.GetGrain<IModelRegistrationGrain>("never-registered").HasRecordAsync());
    }

    [Fact]
    public async Task State_cleared_by_a_grain_is_gone_after_a_cluster_restart()
    {
        var databasePath = _directory.PathOf("cluster.db");

        await using (var first = await StartClusterAsync(databasePath))
        {
            var grain = first.Client.GetGrain<IModelRegistrationGrain>("retired");
            await grain.RegisterAsync("file:///models/old.onnx", 1);
            await grain.ForgetAsync();
            await first.StopAllSilosAsync(TestContext.Current.CancellationToken);
        }

        await using var second = await StartClusterAsync(databasePath);
        var restarted = second.Client.GetGrain<IModelRegistrationGrain>("retired");

        Assert.False(await restarted.HasRecordAsync());
        Assert.Null((await restarted.GetAsync()).ModelUri);
    }

    [Fact]
    public async Task A_silo_whose_database_directory_cannot_be_created_fails_to_start_with_the_validation_message()
    {
        var blockingFile = _directory.PathOf("not-a-directory");
        await File.WriteAllTextAsync(blockingFile, "a file where a directory should be", TestContext.Current.CancellationToken);
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) => silo.AddSqliteGrainStorage("store", options => options.DatabasePath = Path.Combine(blockingFile, "db", "grains.db")));
        var cluster = builder.Build();

        try
        {
            var exception = await Assert.ThrowsAsync<OptionsValidationException>(() => cluster.DeployAsync(TestContext.Current.CancellationToken));
            Assert.Contains("could not be created", exception.Message, StringComparison.Ordinal);
        }
        finally
        {
            await cluster.DisposeAsync();
        }
    }

    private static async Task<InProcessTestCluster> StartClusterAsync(string databasePath)
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) => silo
            .AddSqliteGrainStorage("store", options => options.DatabasePath = databasePath)
            .AddSqliteGrainStorageAsDefault(options => options.DatabasePath = databasePath));
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }
}

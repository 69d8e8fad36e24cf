using Carml.Orleans.Persistence;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Carml.Orleans.Tests;

public interface IRegistrationGrain : IGrainWithStringKey
{
    Task SetAsync(string value);

    Task<string?> GetAsync();

    Task ClearAsync();
}

[GenerateSerializer]
public sealed class RegistrationState
{
    [Id(0)] public string? Value { get; set; }
}

public sealed class RegistrationGrain([PersistentState("registration", "pg")] IPersistentState<RegistrationState> state) : Grain, IRegistrationGrain
{
    public Task SetAsync(string value)
    {
        state.State.Value = value;
        return state.WriteStateAsync();
    }

    public Task<string?> GetAsync() => Task.FromResult(state.State.Value);

    public Task ClearAsync() => state.ClearStateAsync();
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresPersistenceTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<InProcessTestCluster> StartClusterAsync(string connectionString)
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) => silo.AddPostgresGrainStorage("pg", connectionString));
        builder.Options.ServiceId = "carml-test";
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    [Fact]
    public async Task Migrations_apply_once_and_record_the_schema_version()
    {
        var database = await postgres.CreateDatabaseAsync();
        var migrator = new PostgresMigrator(NullLogger<PostgresMigrator>.Instance);

        var first = await migrator.MigrateAsync(database, Ct);
        var second = await migrator.MigrateAsync(database, Ct);

        Assert.Equal(PostgresMigrator.Migrations.Select(m => m.Version), first);
        Assert.Empty(second);
        Assert.Equal(PostgresMigrator.Migrations[^1].Version, await PostgresMigrator.CurrentVersionAsync(database, Ct));
    }

    [Fact]
    public async Task Concurrent_migrations_apply_each_script_exactly_once()
    {
        var database = await postgres.CreateDatabaseAsync();
        var migrator = new PostgresMigrator(NullLogger<PostgresMigrator>.Instance);

        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => migrator.MigrateAsync(database, Ct)));

        Assert.Equal(PostgresMigrator.Migrations.Select(m => m.Version), results.SelectMany(r => r).Order());
    }

    [Fact]
    public async Task Grain_state_survives_a_cluster_restart_through_the_adonet_provider()
    {
        var database = await postgres.CreateDatabaseAsync();
        await using (var first = await StartClusterAsync(database))
        {
            await first.Client.GetGrain<IRegistrationGrain>("iris/1").SetAsync("registered");
            await first.Client.GetGrain<IRegistrationGrain>("iris/1").SetAsync("ready");
        }

        await using var second = await StartClusterAsync(database);

        Assert.Equal("ready", await second.Client.GetGrain<IRegistrationGrain>("iris/1").GetAsync());
        Assert.Null(await second.Client.GetGrain<IRegistrationGrain>("other/1").GetAsync());
    }

    [Fact]
    public async Task Cleared_state_is_deleted_and_reads_as_new()
    {
        var database = await postgres.CreateDatabaseAsync();
        await using var cluster = await StartClusterAsync(database);
        var grain = cluster.Client.GetGrain<IRegistrationGrain>("gone/1");
        await grain.SetAsync("x");

        await grain.ClearAsync();
        await grain.SetAsync("y");

        Assert.Equal("y", await grain.GetAsync());
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync(Ct);
        await using var count = new NpgsqlCommand("SELECT count(*) FROM orleansstorage", connection);
        Assert.Equal(1L, await count.ExecuteScalarAsync(Ct));
    }

    [Fact]
    public async Task Stale_etag_is_an_inconsistent_state_and_a_racing_first_write_loses()
    {
        var database = await postgres.CreateDatabaseAsync();
        await using var cluster = await StartClusterAsync(database);
        var storage = cluster.Silos[0].ServiceProvider.GetRequiredKeyedService<IGrainStorage>("pg");
        var id = GrainId.Create("test", "etag");
        var a = new GrainState<RegistrationState>(new RegistrationState());
        var b = new GrainState<RegistrationState>(new RegistrationState());
        await storage.ReadStateAsync("state", id, a);
        await storage.ReadStateAsync("state", id, b);

        a.State!.Value = "a";
        await storage.WriteStateAsync("state", id, a);
        b.State!.Value = "b";
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("state", id, b));

        await storage.ReadStateAsync("state", id, b);
        a.State!.Value = "a2";
        b.State!.Value = "b2";
        await storage.WriteStateAsync("state", id, b);
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync("state", id, a));
        var read = new GrainState<RegistrationState>(new RegistrationState());
        await storage.ReadStateAsync("state", id, read);
        Assert.Equal("b2", read.State!.Value);
        Assert.Equal("2", read.ETag);
    }

    [Fact]
    public async Task Unreachable_database_fails_fast_naming_the_server_but_not_the_password()
    {
        var connectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = 1, Database = "carml", Username = "carml", Password = "s3cret-password", Timeout = 3,
        }.ConnectionString;

        var error = await Assert.ThrowsAsync<DatabaseUnavailableException>(() =>
            new PostgresMigrator(NullLogger<PostgresMigrator>.Instance).MigrateAsync(connectionString, Ct));

        Assert.Contains("127.0.0.1:1/carml", error.Message);
        Assert.DoesNotContain("s3cret-password", error.ToString());
    }
}

using Microsoft.Data.Sqlite;
using Orleans;
using Orleans.Runtime;
using Orleans.Storage;

namespace Carml.Orleans.Storage.Tests;

public sealed class SqliteGrainStorageTests : IDisposable
{
    private const string StateName = "state";
    private readonly TemporaryDirectory _directory = new();
    private readonly string _databasePath;

    public SqliteGrainStorageTests()
    {
        _databasePath = _directory.PathOf("grains.db");
    }

    private static CancellationToken Cancellation => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Reading_a_grain_that_was_never_written_leaves_the_default_state_with_no_record_and_no_etag()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState());

        await storage.ReadStateAsync(StateName, GrainOf("missing"), state, Cancellation);

        Assert.False(state.RecordExists);
        Assert.Null(state.ETag);
        Assert.NotNull(state.State);
        Assert.Null(state.State.ModelUri);
        Assert.Equal(0, state.State.Revision);
    }

    [Fact]
    public async Task Written_state_is_read_back_by_a_fresh_provider_on_the_same_file()
    {
        var grain = GrainOf("resnet50");
        var written = new GrainState<ModelRegistrationState>(new ModelRegistrationState
        {
            ModelUri = "file:///models/resnet50.onnx",
            Revision = 3,
            Tags = ["vision", "classification"],
        });
        await StorageTestServices.CreateStorage(_databasePath).WriteStateAsync(StateName, grain, written, Cancellation);
        SqliteConnection.ClearAllPools();

        var read = new GrainState<ModelRegistrationState>(new ModelRegistrationState());
        await StorageTestServices.CreateStorage(_databasePath).ReadStateAsync(StateName, grain, read, Cancellation);

        Assert.True(read.RecordExists);
        Assert.Equal(written.ETag, read.ETag);
        Assert.Equal("file:///models/resnet50.onnx", read.State!.ModelUri);
        Assert.Equal(3, read.State.Revision);
        Assert.Equal(["vision", "classification"], read.State.Tags);
    }

    [Fact]
    public async Task A_record_state_roundtrips_through_the_orleans_serializer()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var grain = GrainOf("bert");
        var written = new GrainState<ModelDescriptor>(new ModelDescriptor("bert", 2, [1, 128]));
        await storage.WriteStateAsync(StateName, grain, written, Cancellation);

        var read = new GrainState<ModelDescriptor>();
        await storage.ReadStateAsync(StateName, grain, read, Cancellation);

        Assert.Equal("bert", read.State!.Name);
        Assert.Equal(2, read.State.Version);
        Assert.Equal([1, 128], read.State.InputShape);
    }

    [Fact]
    public async Task Writing_sets_the_etag_and_record_exists_and_each_write_advances_the_etag()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState { Revision = 1 });

        await storage.WriteStateAsync(StateName, GrainOf("m"), state, Cancellation);
        var firstEtag = state.ETag;
        state.State!.Revision = 2;
        await storage.WriteStateAsync(StateName, GrainOf("m"), state, Cancellation);

        Assert.True(state.RecordExists);
        Assert.NotNull(firstEtag);
        Assert.NotNull(state.ETag);
        Assert.NotEqual(firstEtag, state.ETag);
    }

    [Fact]
    public async Task Writing_with_a_stale_etag_throws_InconsistentStateException_with_the_stored_and_current_etags()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var grain = GrainOf("m");
        var first = new GrainState<ModelRegistrationState>(new ModelRegistrationState());
        await storage.WriteStateAsync(StateName, grain, first, Cancellation);
        var staleEtag = first.ETag;
        await storage.WriteStateAsync(StateName, grain, first, Cancellation);

        var stale = new GrainState<ModelRegistrationState>(new ModelRegistrationState(), staleEtag);
        var exception = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.WriteStateAsync(StateName, grain, stale, Cancellation));

        Assert.Equal(first.ETag, exception.StoredEtag);
        Assert.Equal(staleEtag, exception.CurrentEtag);
        Assert.Equal(staleEtag, stale.ETag);
    }

    [Fact]
    public async Task Inserting_with_a_null_etag_over_an_existing_row_throws_InconsistentStateException()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var grain = GrainOf("m");
        var existing = new GrainState<ModelRegistrationState>(new ModelRegistrationState { Revision = 1 });
        await storage.WriteStateAsync(StateName, grain, existing, Cancellation);

        var second = new GrainState<ModelRegistrationState>(new ModelRegistrationState { Revision = 99 });
        var exception = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.WriteStateAsync(StateName, grain, second, Cancellation));

        Assert.Equal(existing.ETag, exception.StoredEtag);
        Assert.Null(exception.CurrentEtag);
        var read = new GrainState<ModelRegistrationState>();
        await storage.ReadStateAsync(StateName, grain, read, Cancellation);
        Assert.Equal(1, read.State!.Revision);
    }

    [Fact]
    public async Task Writing_with_an_etag_for_a_row_that_does_not_exist_throws_InconsistentStateException()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState(), "7");

        var exception = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.WriteStateAsync(StateName, GrainOf("ghost"), state, Cancellation));

        Assert.Null(exception.StoredEtag);
        Assert.Equal("7", exception.CurrentEtag);
    }

    [Fact]
    public async Task Clearing_deletes_the_row_so_a_later_read_finds_no_record()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var grain = GrainOf("m");
        var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState { Revision = 5 });
        await storage.WriteStateAsync(StateName, grain, state, Cancellation);

        await storage.ClearStateAsync(StateName, grain, state, Cancellation);

        Assert.False(state.RecordExists);
        Assert.Null(state.ETag);
        var read = new GrainState<ModelRegistrationState>(new ModelRegistrationState());
        await StorageTestServices.CreateStorage(_databasePath).ReadStateAsync(StateName, grain, read, Cancellation);
        Assert.False(read.RecordExists);
        Assert.Null(read.ETag);
        Assert.Equal(0, read.State!.Revision);
        Assert.Equal(0L, await CountRowsAsync());
    }

    [Fact]
    public async Task After_clearing_a_grain_can_write_again_starting_from_no_etag()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var grain = GrainOf("m");
        var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState { Revision = 1 });
        await storage.WriteStateAsync(StateName, grain, state, Cancellation);
        await storage.ClearStateAsync(StateName, grain, state, Cancellation);

        state.State = new ModelRegistrationState { Revision = 2 };
        await storage.WriteStateAsync(StateName, grain, state, Cancellation);

        var read = new GrainState<ModelRegistrationState>();
        await storage.ReadStateAsync(StateName, grain, read, Cancellation);
        Assert.True(read.RecordExists);
        Assert.Equal(2, read.State!.Revision);
    }

    [Fact]
    public async Task Clearing_with_a_stale_etag_throws_InconsistentStateException_and_keeps_the_row()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var grain = GrainOf("m");
        var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState());
        await storage.WriteStateAsync(StateName, grain, state, Cancellation);
        var staleEtag = state.ETag;
        await storage.WriteStateAsync(StateName, grain, state, Cancellation);

        var stale = new GrainState<ModelRegistrationState>(new ModelRegistrationState(), staleEtag);
        var exception = await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.ClearStateAsync(StateName, grain, stale, Cancellation));

        Assert.Equal(state.ETag, exception.StoredEtag);
        Assert.Equal(staleEtag, exception.CurrentEtag);
        Assert.Equal(1L, await CountRowsAsync());
    }

    [Fact]
    public async Task Clearing_with_no_etag_when_a_row_exists_throws_InconsistentStateException()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var grain = GrainOf("m");
        var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState());
        await storage.WriteStateAsync(StateName, grain, state, Cancellation);

        var unaware = new GrainState<ModelRegistrationState>(new ModelRegistrationState());
        await Assert.ThrowsAsync<InconsistentStateException>(
            () => storage.ClearStateAsync(StateName, grain, unaware, Cancellation));
    }

    [Fact]
    public async Task Clearing_a_grain_that_was_never_written_succeeds_without_a_record()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState());

        await storage.ClearStateAsync(StateName, GrainOf("never"), state, Cancellation);

        Assert.False(state.RecordExists);
        Assert.Null(state.ETag);
    }

    [Fact]
    public async Task With_DeleteStateOnClear_off_clearing_resets_the_state_but_keeps_the_version_advancing()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath, options => options.DeleteStateOnClear = false);
        var grain = GrainOf("m");
        var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState { Revision = 4 });
        await storage.WriteStateAsync(StateName, grain, state, Cancellation);
        var writtenEtag = state.ETag;

        await storage.ClearStateAsync(StateName, grain, state, Cancellation);

        Assert.False(state.RecordExists);
        Assert.NotNull(state.ETag);
        Assert.NotEqual(writtenEtag, state.ETag);
        var read = new GrainState<ModelRegistrationState>(new ModelRegistrationState());
        await storage.ReadStateAsync(StateName, grain, read, Cancellation);
        Assert.False(read.RecordExists);
        Assert.Equal(state.ETag, read.ETag);
        Assert.Equal(0, read.State!.Revision);
        Assert.Equal(1L, await CountRowsAsync());

        var stale = new GrainState<ModelRegistrationState>(new ModelRegistrationState(), writtenEtag);
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StateName, grain, stale, Cancellation));
        read.State = new ModelRegistrationState { Revision = 5 };
        await storage.WriteStateAsync(StateName, grain, read, Cancellation);
        Assert.True(read.RecordExists);
    }

    [Fact]
    public async Task State_names_and_grain_ids_each_address_their_own_row()
    {
        var storage = StorageTestServices.CreateStorage(_databasePath);
        await storage.WriteStateAsync("a", GrainOf("x"), new GrainState<ModelRegistrationState>(new() { Revision = 1 }), Cancellation);
        await storage.WriteStateAsync("b", GrainOf("x"), new GrainState<ModelRegistrationState>(new() { Revision = 2 }), Cancellation);
        await storage.WriteStateAsync("a", GrainOf("y"), new GrainState<ModelRegistrationState>(new() { Revision = 3 }), Cancellation);

        Assert.Equal(1, (await ReadAsync(storage, "a", GrainOf("x"))).Revision);
        Assert.Equal(2, (await ReadAsync(storage, "b", GrainOf("x"))).Revision);
        Assert.Equal(3, (await ReadAsync(storage, "a", GrainOf("y"))).Revision);
        Assert.Equal(3L, await CountRowsAsync());
    }

    [Fact]
    public async Task Concurrent_writes_to_different_grains_all_persist()
    {
        const int GrainCount = 64;
        const int WritesPerGrain = 5;
        var storage = StorageTestServices.CreateStorage(_databasePath);

        await Task.WhenAll(Enumerable.Range(0, GrainCount).Select(index => Task.Run(async () =>
        {
            var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState { ModelUri = $"model-{index}" });
            for (var revision = 1; revision <= WritesPerGrain; revision++)
            {
                state.State!.Revision = revision;
                await storage.WriteStateAsync(StateName, GrainOf($"g{index}"), state, Cancellation);
            }
        }, Cancellation)));

        SqliteConnection.ClearAllPools();
        var fresh = StorageTestServices.CreateStorage(_databasePath);
        for (var index = 0; index < GrainCount; index++)
        {
            var read = new GrainState<ModelRegistrationState>();
            await fresh.ReadStateAsync(StateName, GrainOf($"g{index}"), read, Cancellation);
            Assert.True(read.RecordExists);
            Assert.Equal($"model-{index}", read.State!.ModelUri);
            Assert.Equal(WritesPerGrain, read.State.Revision);
        }

        Assert.Equal((long)GrainCount, await CountRowsAsync());
    }

    [Fact]
    public async Task Concurrent_writers_holding_the_same_etag_see_exactly_one_succeed()
    {
        const int WriterCount = 16;
        var storage = StorageTestServices.CreateStorage(_databasePath);
        var grain = GrainOf("contended");
        var initial = new GrainState<ModelRegistrationState>(new ModelRegistrationState());
        await storage.WriteStateAsync(StateName, grain, initial, Cancellation);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, WriterCount).Select(writer => Task.Run(async () =>
        {
            var state = new GrainState<ModelRegistrationState>(new ModelRegistrationState { Revision = writer }, initial.ETag);
            try
            {
                await storage.WriteStateAsync(StateName, grain, state, Cancellation);
                return true;
            }
            catch (InconsistentStateException)
            {
                return false;
            }
        }, Cancellation)));

        Assert.Single(outcomes, succeeded => succeeded);
    }

    [Fact]
    public async Task Initialization_is_idempotent_and_puts_the_database_in_WAL_mode()
    {
        await StorageTestServices.CreateStorage(_databasePath).InitializeAsync(Cancellation);
        var second = StorageTestServices.CreateStorage(_databasePath);
        await second.InitializeAsync(Cancellation);
        await second.InitializeAsync(Cancellation);

        await using var connection = new SqliteConnection($"Data Source={_databasePath};Pooling=False");
        await connection.OpenAsync(Cancellation);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode;";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync(Cancellation));
    }

    [Fact]
    public async Task A_provider_creates_the_directory_of_its_database_file()
    {
        var nestedPath = _directory.PathOf(Path.Combine("nested", "deeper", "grains.db"));
        var storage = StorageTestServices.CreateStorage(nestedPath);

        await storage.WriteStateAsync(StateName, GrainOf("m"), new GrainState<ModelRegistrationState>(new()), Cancellation);

        Assert.True(File.Exists(nestedPath));
        Assert.Equal(Path.GetFullPath(nestedPath), storage.DatabasePath);
    }

    private static GrainId GrainOf(string key) => GrainId.Create("modelregistration", key);

    private static async Task<ModelRegistrationState> ReadAsync(SqliteGrainStorage storage, string stateName, GrainId grain)
    {
        var state = new GrainState<ModelRegistrationState>();
        await storage.ReadStateAsync(stateName, grain, state, Cancellation);
        return state.State!;
    }

    private async Task<long> CountRowsAsync()
    {
        await using var connection = new SqliteConnection($"Data Source={_databasePath};Pooling=False");
        await connection.OpenAsync(Cancellation);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM grain_state;";
        return (long)(await command.ExecuteScalarAsync(Cancellation))!;
    }
}

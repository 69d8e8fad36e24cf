using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Persistence;
using Carml.Orleans.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Carml.Orleans.Tests;

/// <summary>One contract, two stores: the embedded SQLite store and PostgreSQL must search the same way.</summary>
public abstract class RunStoreContract
{
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected abstract Task<IRunStore> CreateStoreAsync();

    private static readonly DateTimeOffset Start = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

    private static RunRecord Run(int i, string model = "iris", string version = "1", RunStatus status = RunStatus.Succeeded,
        RunKind kind = RunKind.Prediction, string? agent = "silo-a", Dictionary<string, string>? labels = null) => new()
    {
        Id = RunIds.New(Start.AddSeconds(i)),
        Kind = kind,
        Model = model,
        Version = version,
        Agent = agent,
        Status = status,
        BatchSize = 1,
        CreatedAt = Start.AddSeconds(i),
        Inputs = [new TensorSummary("features", "FP32", [1, 4], 16)],
        Timings = new StageTimings(1, 0, 20, 0, 25),
        Labels = labels ?? new Dictionary<string, string>(),
    };

    [Fact]
    public async Task Saved_run_reads_back_whole()
    {
        var store = await CreateStoreAsync();
        var run = Run(1, labels: new() { ["team"] = "vision" }) with
        {
            Evaluation = new EvaluationResult { Dataset = "iris", Samples = 30, Correct = 29, Top1Accuracy = 29 / 30.0, Batches = [new BatchTiming(10, 1.5)] },
        };

        await store.SaveAsync([run], Ct);
        var read = await store.GetAsync(run.Id, Ct);

        Assert.NotNull(read);
        Assert.Equal(run.Id, read.Id);
        Assert.Equal("vision", read.Labels["team"]);
        Assert.Equal(29, read.Evaluation!.Correct);
        Assert.Equal(1.5, read.Evaluation.Batches[0].Milliseconds);
        Assert.Equal([1L, 4L], read.Inputs[0].Shape);
        Assert.Null(await store.GetAsync(RunIds.New(Start), Ct));
    }

    [Fact]
    public async Task Saving_again_replaces_the_record()
    {
        var store = await CreateStoreAsync();
        var run = Run(1, kind: RunKind.Evaluation, status: RunStatus.Running);
        await store.SaveAsync([run], Ct);

        await store.SaveAsync([run with { Status = RunStatus.Succeeded, Progress = 1 }], Ct);

        Assert.Equal(RunStatus.Succeeded, (await store.GetAsync(run.Id, Ct))!.Status);
        Assert.Single((await store.SearchAsync(new RunQuery(), Ct)).Runs);
    }

    [Fact]
    public async Task Owner_filter_finds_only_that_owners_runs()
    {
        var store = await CreateStoreAsync();
        await store.SaveAsync([Run(1) with { Owner = "alice" }, Run(2) with { Owner = "bob" }, Run(3), Run(4) with { Owner = "alice" }], Ct);

        var alice = await store.SearchAsync(new RunQuery { Owner = "alice" }, Ct);
        var nobody = await store.SearchAsync(new RunQuery { Owner = "carol" }, Ct);

        Assert.Equal(["alice", "alice"], alice.Runs.Select(r => r.Owner));
        Assert.Empty(nobody.Runs);
    }

    [Fact]
    public async Task Every_filter_narrows_the_search()
    {
        var store = await CreateStoreAsync();
        await store.SaveAsync(
        [
            Run(1), Run(2, version: "2"), Run(3, model: "mlp"), Run(4, status: RunStatus.Failed), Run(5, kind: RunKind.Evaluation),
            Run(6, agent: "silo-b"), Run(7, labels: new() { ["team"] = "vision" }), Run(8, labels: new() { ["team"] = "nlp" }),
        ], Ct);

        async Task<int> Count(RunQuery query) => (await store.SearchAsync(query, Ct)).Runs.Count;

        Assert.Equal(8, await Count(new RunQuery()));
        Assert.Equal(7, await Count(new RunQuery { Model = "iris" }));
        Assert.Equal(1, await Count(new RunQuery { Model = "iris", Version = "2" }));
        Assert.Equal(1, await Count(new RunQuery { Status = RunStatus.Failed }));
        Assert.Equal(1, await Count(new RunQuery { Kind = RunKind.Evaluation }));
        Assert.Equal(1, await Count(new RunQuery { Agent = "silo-b" }));
        Assert.Equal(1, await Count(new RunQuery { Label = new("team", "vision") }));
        Assert.Equal(3, await Count(new RunQuery { From = Start.AddSeconds(3), To = Start.AddSeconds(6) }));
    }

    [Fact]
    public async Task Paging_is_newest_first_without_gaps_or_repeats()
    {
        var store = await CreateStoreAsync();
        var runs = Enumerable.Range(0, 23).Select(i => Run(i % 5)).ToList();
        await store.SaveAsync(runs, Ct);

        var seen = new List<RunRecord>();
        string? token = null;
        do
        {
            var page = await store.SearchAsync(new RunQuery { PageSize = 5, PageToken = token }, Ct);
            Assert.True(page.Runs.Count <= 5);
            seen.AddRange(page.Runs);
            token = page.NextPageToken;
        }
        while (token is not null);

        Assert.Equal(runs.Select(r => r.Id).Order(), seen.Select(r => r.Id).Order());
        Assert.Equal(seen.OrderByDescending(r => r.CreatedAt).ThenByDescending(r => r.Id, StringComparer.Ordinal).Select(r => r.Id), seen.Select(r => r.Id));
    }

    [Fact]
    public async Task A_forged_page_token_past_the_end_of_time_is_an_invalid_argument()
    {
        var store = await CreateStoreAsync();
        var forged = PageTokens.Encode($"{long.MaxValue}:{RunIds.New(Start)}");

        var error = await Assert.ThrowsAsync<ModelException>(() => store.SearchAsync(new RunQuery { PageToken = forged }, Ct));

        Assert.Equal(ModelErrorKind.InvalidArgument, error.Kind);
    }

    [Theory]
    [InlineData(0, null)]
    [InlineData(501, null)]
    [InlineData(10, "not-a-token")]
    public async Task Bad_queries_are_invalid_arguments(int pageSize, string? token)
    {
        var store = await CreateStoreAsync();

        var error = await Assert.ThrowsAsync<ModelException>(() => store.SearchAsync(new RunQuery { PageSize = pageSize, PageToken = token }, Ct));

        Assert.Equal(ModelErrorKind.InvalidArgument, error.Kind);
    }
}

public sealed class SqliteRunStoreTests : RunStoreContract, IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "carml-runs-" + Guid.NewGuid().ToString("N"));

    protected override Task<IRunStore> CreateStoreAsync() =>
        Task.FromResult<IRunStore>(new SqliteRunStore(Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".db")));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresRunStoreTests(PostgresServer postgres) : RunStoreContract
{
    [Fact]
    public async Task Runs_written_by_one_process_are_read_by_the_next()
    {
        var database = await postgres.CreateDatabaseAsync();
        await new PostgresMigrator(NullLogger<PostgresMigrator>.Instance).MigrateAsync(database, Ct);
        var run = new RunRecord { Id = RunIds.New(DateTimeOffset.UtcNow), Model = "iris", Version = "1", Status = RunStatus.Succeeded, CreatedAt = DateTimeOffset.UtcNow };
        await new PostgresRunStore(database).SaveAsync([run], Ct);
        Npgsql.NpgsqlConnection.ClearAllPools();

        var read = await new PostgresRunStore(database).GetAsync(run.Id, Ct);

        Assert.Equal(RunStatus.Succeeded, read?.Status);
    }

    protected override async Task<IRunStore> CreateStoreAsync()
    {
        var database = await postgres.CreateDatabaseAsync();
        await new PostgresMigrator(NullLogger<PostgresMigrator>.Instance).MigrateAsync(database, Ct);
        return new PostgresRunStore(database);
    }
}

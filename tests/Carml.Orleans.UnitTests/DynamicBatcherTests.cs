using Carml.Orleans.Core.Batching;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Time.Testing;

namespace Carml.Orleans.Tests;

/// <summary>
/// The batcher driven by a fake clock and a fake runtime whose batches the test completes by hand: no sleeps, every
/// step is observed synchronously.
/// </summary>
public sealed class DynamicBatcherTests : IDisposable
{
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(10);

    private readonly FakeTimeProvider _clock = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly FakeRuntime _runtime = new();
    private DynamicBatcher<Item, string>? _batcher;

    /// <summary>A request: a kind (requests of different kinds never share a batch), rows, and a label.</summary>
    private sealed record Item(string Kind, int Rows, string Label);

    private DynamicBatcher<Item, string> Create(DynamicBatcherOptions options) =>
        _batcher = new DynamicBatcher<Item, string>(options, _runtime.ExecuteAsync, (a, b) => a.Kind == b.Kind, _clock, "model 'test' version '1'");

    private static Task<BatchedResult<string>> Enqueue(DynamicBatcher<Item, string> batcher, Item item, TimeSpan? timeout = null) =>
        batcher.EnqueueAsync(item, item.Rows, timeout, CancellationToken.None);

    private static Task<BatchedResult<string>> EnqueueCancellable(DynamicBatcher<Item, string> batcher, Item item, CancellationToken cancellationToken) =>
        batcher.EnqueueAsync(item, item.Rows, null, cancellationToken);

    public void Dispose() => _batcher?.Dispose();

    [Fact]
    public async Task Requests_queued_while_the_runtime_is_busy_run_together_up_to_the_batch_limit()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 4 });
        var first = Enqueue(batcher, new Item("a", 1, "r0"));
        Assert.Single(_runtime.Batches);

        var waiting = Enumerable.Range(1, 6).Select(i => Enqueue(batcher, new Item("a", 1, $"r{i}"))).ToArray();
        Assert.Single(_runtime.Batches);

        _runtime.Complete(0);
        Assert.Equal(2, _runtime.Batches.Count);
        Assert.Equal(["r1", "r2", "r3", "r4"], _runtime.Batches[1].Select(i => i.Label));

        _runtime.Complete(1);
        Assert.Equal(["r5", "r6"], _runtime.Batches[2].Select(i => i.Label));
        _runtime.Complete(2);

        var results = await Task.WhenAll(waiting).WaitAsync(Bounded, TestContext.Current.CancellationToken);
        Assert.Equal(["out-r1", "out-r2", "out-r3", "out-r4", "out-r5", "out-r6"], results.Select(r => r.Value));
        Assert.Equal([4, 4, 4, 4, 2, 2], results.Select(r => r.BatchRows));
        Assert.Equal(1, (await first.WaitAsync(Bounded, TestContext.Current.CancellationToken)).BatchRows);
        Assert.Equal(4, batcher.GetStatistics().MaxBatchRows);
    }

    [Fact]
    public void Requests_with_different_non_batch_dimensions_are_never_merged_and_each_kind_keeps_its_order()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 8 });
        _ = Enqueue(batcher, new Item("a", 1, "busy"));
        foreach (var (kind, label) in new[] { ("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2"), ("a", "a3") })
        {
            _ = Enqueue(batcher, new Item(kind, 1, label));
        }

        _runtime.Complete(0);
        Assert.Equal(["a1", "a2", "a3"], _runtime.Batches[1].Select(i => i.Label));
        _runtime.Complete(1);
        Assert.Equal(["b1", "b2"], _runtime.Batches[2].Select(i => i.Label));
        Assert.All(_runtime.Batches, batch => Assert.Single(batch.Select(i => i.Kind).Distinct()));
    }

    [Fact]
    public void A_request_is_never_split_and_rows_add_up_to_at_most_the_limit()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 8 });
        _ = Enqueue(batcher, new Item("a", 1, "busy"));
        _ = Enqueue(batcher, new Item("a", 5, "five"));
        _ = Enqueue(batcher, new Item("a", 4, "four"));
        _ = Enqueue(batcher, new Item("a", 3, "three"));

        _runtime.Complete(0);
        Assert.Equal(["five"], _runtime.Batches[1].Select(i => i.Label));
        _runtime.Complete(1);
        Assert.Equal(["four", "three"], _runtime.Batches[2].Select(i => i.Label));
    }

    [Fact]
    public void A_partial_batch_waits_for_the_queue_delay_then_runs_with_what_arrived()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 8, MaxQueueDelay = TimeSpan.FromMilliseconds(5) });
        _ = Enqueue(batcher, new Item("a", 1, "r1"));
        _clock.Advance(TimeSpan.FromMilliseconds(3));
        _ = Enqueue(batcher, new Item("a", 2, "r2"));
        Assert.Empty(_runtime.Batches);

        _clock.Advance(TimeSpan.FromMilliseconds(1.9));
        Assert.Empty(_runtime.Batches);

        _clock.Advance(TimeSpan.FromMilliseconds(0.1));
        Assert.Equal(["r1", "r2"], Assert.Single(_runtime.Batches).Select(i => i.Label));
    }

    [Fact]
    public async Task A_full_batch_runs_without_waiting_for_the_delay()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 3, MaxQueueDelay = TimeSpan.FromSeconds(1) });
        var tasks = Enumerable.Range(0, 3).Select(i => Enqueue(batcher, new Item("a", 1, $"r{i}"))).ToArray();

        Assert.Equal(3, Assert.Single(_runtime.Batches).Count);
        _clock.Advance(TimeSpan.FromMilliseconds(2));
        _runtime.Complete(0);
        var result = await tasks[0].WaitAsync(Bounded, TestContext.Current.CancellationToken);
        Assert.Equal(TimeSpan.Zero, result.QueueTime);
        Assert.Equal(TimeSpan.FromMilliseconds(2), result.ComputeTime);
    }

    [Fact]
    public void A_preferred_batch_size_is_dispatched_at_once_and_the_largest_one_wins()
    {
        var batcher = Create(new DynamicBatcherOptions
        {
            MaxBatchRows = 16,
            MaxQueueDelay = TimeSpan.FromSeconds(1),
            PreferredBatchSizes = [2, 4],
            MaxConcurrentBatches = 1,
        });
        _ = Enqueue(batcher, new Item("a", 1, "r1"));
        Assert.Empty(_runtime.Batches);
        _ = Enqueue(batcher, new Item("a", 1, "r2"));
        Assert.Equal(2, Assert.Single(_runtime.Batches).Count);

        // While the first batch runs, five arrive: the largest preferred prefix (4) goes next, the fifth waits.
        for (var i = 3; i <= 7; i++)
        {
            _ = Enqueue(batcher, new Item("a", 1, $"r{i}"));
        }

        _runtime.Complete(0);
        Assert.Equal(["r3", "r4", "r5", "r6"], _runtime.Batches[1].Select(i => i.Label));
        _runtime.Complete(1);
        Assert.Equal(2, _runtime.Batches.Count);

        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["r7"], _runtime.Batches[2].Select(i => i.Label));
    }

    [Fact]
    public async Task A_full_queue_refuses_with_resource_exhausted_and_counts_the_refusal()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 4, MaxQueueSize = 2 });
        _ = Enqueue(batcher, new Item("a", 1, "running"));
        _ = Enqueue(batcher, new Item("a", 1, "q1"));
        _ = Enqueue(batcher, new Item("a", 1, "q2"));

        var error = await Assert.ThrowsAsync<ModelException>(() => Enqueue(batcher, new Item("a", 1, "q3")));
        Assert.Equal(ModelErrorKind.ResourceExhausted, error.Kind);
        Assert.Contains("queue of model 'test' version '1' is full (2 requests waiting)", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, batcher.GetStatistics().Rejected);

        _runtime.Complete(0);
        _ = Enqueue(batcher, new Item("a", 1, "q3-retried"));
        Assert.Equal(1, batcher.GetStatistics().Queued);
        Assert.Equal(1, batcher.GetStatistics().Rejected);
    }

    [Fact]
    public async Task A_request_that_waits_past_its_timeout_fails_with_deadline_exceeded_and_never_runs()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 4 });
        _ = Enqueue(batcher, new Item("a", 1, "running"));
        var late = Enqueue(batcher, new Item("a", 1, "late"), TimeSpan.FromMilliseconds(100));
        var patient = Enqueue(batcher, new Item("a", 1, "patient"));

        _clock.Advance(TimeSpan.FromMilliseconds(99));
        Assert.False(late.IsCompleted);
        _clock.Advance(TimeSpan.FromMilliseconds(1));

        var error = await Assert.ThrowsAsync<ModelException>(() => late.WaitAsync(Bounded, TestContext.Current.CancellationToken));
        Assert.Equal(ModelErrorKind.DeadlineExceeded, error.Kind);
        Assert.Contains("passed its timeout of 100 ms; it was not run", error.Message, StringComparison.Ordinal);

        _runtime.Complete(0);
        Assert.Equal(["patient"], _runtime.Batches[1].Select(i => i.Label));
        Assert.DoesNotContain(_runtime.Batches.SelectMany(b => b), i => i.Label == "late");
        Assert.Equal(1, batcher.GetStatistics().Expired);
        _runtime.Complete(1);
        await patient.WaitAsync(Bounded, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task The_default_timeout_applies_when_a_request_brings_none()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 4, DefaultTimeout = TimeSpan.FromMilliseconds(50) });
        _ = Enqueue(batcher, new Item("a", 1, "running"));
        var waiting = Enqueue(batcher, new Item("a", 1, "waiting"));

        _clock.Advance(TimeSpan.FromMilliseconds(50));

        var error = await Assert.ThrowsAsync<ModelException>(() => waiting.WaitAsync(Bounded, TestContext.Current.CancellationToken));
        Assert.Equal(ModelErrorKind.DeadlineExceeded, error.Kind);
    }

    [Fact]
    public async Task A_cancelled_request_leaves_the_queue_at_once_and_never_reaches_the_runtime()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 4 });
        _ = Enqueue(batcher, new Item("a", 1, "running"));
        using var cancel = new CancellationTokenSource();
        var cancelled = EnqueueCancellable(batcher, new Item("a", 1, "cancelled"), cancel.Token);
        var kept = Enqueue(batcher, new Item("a", 1, "kept"));
        Assert.Equal(2, batcher.GetStatistics().Queued);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Bounded, TestContext.Current.CancellationToken));
        Assert.Equal(1, batcher.GetStatistics().Queued);
        _runtime.Complete(0);
        Assert.Equal(["kept"], _runtime.Batches[1].Select(i => i.Label));
        Assert.Equal(1, batcher.GetStatistics().Cancelled);
        _runtime.Complete(1);
        await kept.WaitAsync(Bounded, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task A_request_cancelled_before_it_is_queued_is_refused_without_running()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 4 });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => EnqueueCancellable(batcher, new Item("a", 1, "x"), new CancellationToken(canceled: true)));

        Assert.Empty(_runtime.Batches);
    }

    [Fact]
    public async Task With_merging_off_every_request_runs_alone_up_to_the_concurrency_limit()
    {
        var batcher = Create(new DynamicBatcherOptions { MergeRequests = false, MaxConcurrentBatches = 2 });
        var tasks = Enumerable.Range(0, 3).Select(i => Enqueue(batcher, new Item("a", 1, $"r{i}"))).ToArray();

        Assert.Equal(2, _runtime.Batches.Count);
        Assert.Equal(1, batcher.GetStatistics().Queued);
        _runtime.Complete(1);
        Assert.Equal(3, _runtime.Batches.Count);
        Assert.All(_runtime.Batches, b => Assert.Single(b));
        _runtime.Complete(0);
        _runtime.Complete(2);
        Assert.Equal(["out-r0", "out-r1", "out-r2"], (await Task.WhenAll(tasks).WaitAsync(Bounded, TestContext.Current.CancellationToken)).Select(r => r.Value));
    }

    [Fact]
    public async Task A_failing_batch_fails_each_of_its_requests_and_the_queue_moves_on()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 4 });
        var failing = Enqueue(batcher, new Item("a", 1, "r1"));
        var next = Enqueue(batcher, new Item("a", 1, "r2"));

        _runtime.Fail(0, new ModelException(ModelErrorKind.InvalidArgument, "bad input"));

        Assert.Equal("bad input", (await Assert.ThrowsAsync<ModelException>(() => failing.WaitAsync(Bounded, TestContext.Current.CancellationToken))).Message);
        _runtime.Complete(1);
        Assert.Equal("out-r2", (await next.WaitAsync(Bounded, TestContext.Current.CancellationToken)).Value);
    }

    [Fact]
    public async Task Disposing_fails_queued_requests_with_unavailable()
    {
        var batcher = Create(new DynamicBatcherOptions { MaxBatchRows = 4 });
        _ = Enqueue(batcher, new Item("a", 1, "running"));
        var queued = Enqueue(batcher, new Item("a", 1, "queued"));

        batcher.Dispose();

        Assert.Equal(ModelErrorKind.Unavailable, (await Assert.ThrowsAsync<ModelException>(() => queued.WaitAsync(Bounded, TestContext.Current.CancellationToken))).Kind);
    }

    [Fact]
    public void Options_come_from_the_manifest_with_batching_off_when_the_section_is_absent()
    {
        var manifest = new ModelManifest { Name = "m", Version = "1", MaxBatchSize = 32, Inputs = [], Outputs = [] };

        var off = DynamicBatcherOptions.For(manifest, 2);
        var on = DynamicBatcherOptions.For(manifest with
        {
            DynamicBatching = new DynamicBatchingSettings { MaxQueueDelayMicroseconds = 250, PreferredBatchSizes = [8], MaxQueueSize = 100, DefaultTimeoutMicroseconds = 5000 },
        }, 1);
        var disabled = DynamicBatcherOptions.For(manifest with { DynamicBatching = new DynamicBatchingSettings { Enabled = false, MaxQueueSize = 3 } }, 1);

        Assert.False(off.MergeRequests);
        Assert.Equal(2, off.MaxConcurrentBatches);
        Assert.True(on.MergeRequests);
        Assert.Equal(32, on.MaxBatchRows);
        Assert.Equal(TimeSpan.FromMicroseconds(250), on.MaxQueueDelay);
        Assert.Equal(TimeSpan.FromMilliseconds(5), on.DefaultTimeout);
        Assert.False(disabled.MergeRequests);
        Assert.Equal(3, disabled.MaxQueueSize);
    }

    [Fact]
    public async Task A_long_queue_behind_a_runtime_that_finishes_synchronously_drains_without_deepening_the_stack()
    {
        var first = new TaskCompletionSource<IReadOnlyList<string>>();
        var runs = 0;
        using var batcher = new DynamicBatcher<Item, string>(
            new DynamicBatcherOptions { MaxBatchRows = 1 },
            batch => Interlocked.Increment(ref runs) == 1 ? first.Task : Task.FromResult<IReadOnlyList<string>>([batch[0].Label]),
            (a, b) => true,
            _clock,
            "model 'sync' version '1'");
        _ = Enqueue(batcher, new Item("a", 1, "first"));
        var queued = Enumerable.Range(0, 20_000).Select(i => Enqueue(batcher, new Item("a", 1, $"r{i}"))).ToArray();

        first.SetResult(["first"]);

        var results = await Task.WhenAll(queued).WaitAsync(Bounded, TestContext.Current.CancellationToken);
        Assert.Equal("r19999", results[^1].Value);
        Assert.Equal(20_001, runs);
    }

    /// <summary>A runtime whose batches stay running until the test completes them.</summary>
    private sealed class FakeRuntime
    {
        private readonly List<TaskCompletionSource<IReadOnlyList<string>>> _completions = [];

        public List<IReadOnlyList<Item>> Batches { get; } = [];

        public Task<IReadOnlyList<string>> ExecuteAsync(IReadOnlyList<Item> batch)
        {
            var completion = new TaskCompletionSource<IReadOnlyList<string>>();
            lock (Batches)
            {
                Batches.Add(batch);
                _completions.Add(completion);
            }

            return completion.Task;
        }

        public void Complete(int batch) =>
            _completions[batch].SetResult(Batches[batch].Select(i => $"out-{i.Label}").ToArray());

        public void Fail(int batch, Exception error) => _completions[batch].SetException(error);
    }
}

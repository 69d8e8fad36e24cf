using Carml.Orleans.Grains.Placement;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Time.Testing;

namespace Carml.Orleans.Tests.Placement;

public sealed class ModelMemoryBudgetTests
{
    private readonly FakeTimeProvider _time = new();

    private sealed class Resident(FakeTimeProvider time) : IMemoryResident
    {
        public int InFlight { get; set; }

        public long LastUsed { get; private set; } = time.GetTimestamp();

        public string ExecutionProvider => "CPUExecutionProvider";

        public int Evicted { get; private set; }

        public void Use(FakeTimeProvider time)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            LastUsed = time.GetTimestamp();
        }

        public void Evict() => Evicted++;
    }

    private Resident Load(ModelMemoryBudget budget, string key, long bytes)
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        var resident = new Resident(_time);
        budget.Reserve(key, bytes, resident);
        return resident;
    }

    [Fact]
    public void Loads_within_the_budget_evict_nothing()
    {
        var budget = new ModelMemoryBudget(300, _time);

        var a = Load(budget, "a/1/0", 100);
        var b = Load(budget, "b/1/0", 200);

        Assert.Equal(300, budget.UsedBytes);
        Assert.Equal(0, budget.Evictions);
        Assert.Equal(0, a.Evicted + b.Evicted);
    }

    [Fact]
    public void Loading_past_the_budget_evicts_the_least_recently_used_idle_replica()
    {
        var budget = new ModelMemoryBudget(200, _time);
        var a = Load(budget, "a/1/0", 100);
        var b = Load(budget, "b/1/0", 100);
        a.Use(_time); // b is now the least recently used

        var evicted = budget.Reserve("c/1/0", 100, new Resident(_time));

        Assert.Equal(["b/1/0"], evicted);
        Assert.Equal(1, b.Evicted);
        Assert.Equal(0, a.Evicted);
        Assert.Equal(200, budget.UsedBytes);
        Assert.Equal(1, budget.Evictions);
    }

    [Fact]
    public void Eviction_takes_as_many_idle_replicas_as_it_needs_oldest_first()
    {
        var budget = new ModelMemoryBudget(300, _time);
        var a = Load(budget, "a/1/0", 100);
        var b = Load(budget, "b/1/0", 100);
        var c = Load(budget, "c/1/0", 100);

        var evicted = budget.Reserve("big/1/0", 250, new Resident(_time));

        Assert.Equal(["a/1/0", "b/1/0", "c/1/0"], evicted);
        Assert.Equal(250, budget.UsedBytes);
        Assert.Equal(3, a.Evicted + b.Evicted + c.Evicted);
    }

    [Fact]
    public void A_replica_with_requests_in_flight_is_never_evicted()
    {
        var budget = new ModelMemoryBudget(200, _time);
        var busy = Load(budget, "busy/1/0", 100);
        var idle = Load(budget, "idle/1/0", 100);
        busy.InFlight = 1; // the least recently used, but serving

        var evicted = budget.Reserve("c/1/0", 100, new Resident(_time));

        Assert.Equal(["idle/1/0"], evicted);
        Assert.Equal(0, busy.Evicted);
    }

    [Fact]
    public void When_nothing_idle_can_make_room_the_load_is_refused_and_nothing_is_evicted()
    {
        var budget = new ModelMemoryBudget(200, _time);
        var a = Load(budget, "a/1/0", 100);
        var b = Load(budget, "b/1/0", 100);
        a.InFlight = 1;
        b.InFlight = 2;

        var refused = Assert.Throws<ModelException>(() => budget.Reserve("c/1/0", 100, new Resident(_time)));

        Assert.Equal(ModelErrorKind.ResourceExhausted, refused.Kind);
        Assert.Contains("2 serving requests", refused.Message);
        Assert.Equal(0, a.Evicted + b.Evicted);
        Assert.Equal(200, budget.UsedBytes);
        Assert.Equal(1, budget.Refusals);
    }

    [Fact]
    public void A_replica_larger_than_the_whole_budget_is_refused_without_evicting_anything()
    {
        var budget = new ModelMemoryBudget(200, _time);
        var a = Load(budget, "a/1/0", 100);

        var refused = Assert.Throws<ModelException>(() => budget.Reserve("huge/1/0", 201, new Resident(_time)));

        Assert.Equal(ModelErrorKind.ResourceExhausted, refused.Kind);
        Assert.Equal(0, a.Evicted);
        Assert.Equal(100, budget.UsedBytes);
    }

    [Fact]
    public void An_evicted_replica_reloads_by_reserving_again_and_evicts_the_next_least_recently_used()
    {
        var budget = new ModelMemoryBudget(200, _time);
        Load(budget, "a/1/0", 100);
        var b = Load(budget, "b/1/0", 100);
        var c = Load(budget, "c/1/0", 100); // evicts a

        var evicted = budget.Reserve("a/1/0", 100, new Resident(_time)); // a is back: b is now the oldest

        Assert.Equal(["b/1/0"], evicted);
        Assert.Equal(1, b.Evicted);
        Assert.Equal(0, c.Evicted);
        Assert.Equal(["a/1/0", "c/1/0"], budget.Snapshot().Select(r => r.Replica).Order());
        Assert.Equal(2, budget.Evictions);
    }

    [Fact]
    public void Releasing_an_evicted_replica_does_not_release_its_reloaded_successor()
    {
        var budget = new ModelMemoryBudget(100, _time);
        var first = Load(budget, "a/1/0", 100);
        Load(budget, "b/1/0", 100); // evicts a
        Load(budget, "a/1/0", 100); // evicts b, a reloaded by a new resident

        budget.Release("a/1/0", first); // the old activation deactivating late

        Assert.Equal(100, budget.UsedBytes);
        Assert.Equal(["a/1/0"], budget.Snapshot().Select(r => r.Replica));
    }

    [Fact]
    public void A_zero_budget_is_unlimited()
    {
        var budget = new ModelMemoryBudget(0, _time);

        for (var i = 0; i < 10; i++)
        {
            Load(budget, $"m{i}/1/0", long.MaxValue / 100);
        }

        Assert.Equal(0, budget.Evictions);
        Assert.Equal(10, budget.LoadedCount);
    }

    [Fact]
    public void Snapshot_lists_the_most_recently_used_first_with_memory_and_in_flight()
    {
        var budget = new ModelMemoryBudget(0, _time);
        var a = Load(budget, "a/1/0", 100);
        Load(budget, "b/1/0", 200);
        a.Use(_time);
        a.InFlight = 3;

        var snapshot = budget.Snapshot();

        Assert.Equal(["a/1/0", "b/1/0"], snapshot.Select(r => r.Replica));
        Assert.Equal(100, snapshot[0].MemoryBytes);
        Assert.Equal(3, snapshot[0].InFlight);
        Assert.Equal(_time.GetUtcNow(), snapshot[0].LastUsedAt);
    }

    [Fact]
    public void The_estimate_is_the_file_size_times_the_factor()
    {
        var options = new ModelMemoryOptions { ModelMemoryFactor = 1.5 };

        Assert.Equal(1500, options.EstimateBytes(1000));
        Assert.Equal(2, options.EstimateBytes(0));
    }

    [Fact]
    public void Loading_and_releasing_signal_a_change_for_the_agent_report()
    {
        var budget = new ModelMemoryBudget(0, _time);
        var beforeLoad = budget.NextChange;

        var a = Load(budget, "a/1/0", 100);
        var beforeRelease = budget.NextChange;
        budget.Release("a/1/0", a);

        Assert.True(beforeLoad.IsCompletedSuccessfully);
        Assert.True(beforeRelease.IsCompletedSuccessfully);
        Assert.False(budget.NextChange.IsCompleted);
    }
}

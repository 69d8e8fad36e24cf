using Carml.Orleans.Grains;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Tests.Placement;

public sealed class ReplicaSetStateTests
{
    private static ReplicaStatus Replica(int index, ModelState state, string? reason = null) => new() { Index = index, State = state, Reason = reason };

    [Fact]
    public void A_version_with_one_ready_replica_is_ready_and_names_the_others()
    {
        var (state, reason) = ModelGrain.Summarize([
            Replica(0, ModelState.Ready),
            Replica(1, ModelState.Unschedulable, "needs a GPU silo; the cluster has none: silo a cpu"),
            Replica(2, ModelState.Failed, "file lost"),
        ]);

        Assert.Equal(ModelState.Ready, state);
        Assert.Equal("1 of 3 replicas ready; replica 1 unschedulable: needs a GPU silo; the cluster has none: silo a cpu; replica 2 failed: file lost", reason);
    }

    [Fact]
    public void A_version_whose_replicas_all_cannot_be_placed_is_unschedulable_with_the_reason()
    {
        var (state, reason) = ModelGrain.Summarize([Replica(0, ModelState.Unschedulable, "needs a GPU silo; the cluster has none: silo a cpu")]);

        Assert.Equal(ModelState.Unschedulable, state);
        Assert.Equal("needs a GPU silo; the cluster has none: silo a cpu", reason);
    }

    [Fact]
    public void A_version_whose_replicas_were_evicted_for_memory_stays_ready_because_they_reload_on_demand()
    {
        var (state, _) = ModelGrain.Summarize([Replica(0, ModelState.Registered, "unloaded to make room"), Replica(1, ModelState.Failed, "boom")]);

        Assert.Equal(ModelState.Ready, state);
    }

    [Fact]
    public void Loading_wins_over_failures_while_no_replica_is_ready()
    {
        Assert.Equal(ModelState.Loading, ModelGrain.Summarize([Replica(0, ModelState.Loading), Replica(1, ModelState.Failed, "boom")]).State);
        Assert.Equal(ModelState.Failed, ModelGrain.Summarize([Replica(0, ModelState.Unschedulable, "x"), Replica(1, ModelState.Failed, "boom")]).State);
        Assert.Equal(ModelState.Registered, ModelGrain.Summarize([]).State);
        Assert.Equal(ModelState.Registered, ModelGrain.Summarize([Replica(0, ModelState.Registered)]).State);
    }
}

using Carml.Orleans.Grains.Placement;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Tests.Placement;

public sealed class ReplicaPlacementPolicyTests
{
    private const long MiB = 1024 * 1024;

    private static PlacementCandidate Cpu(string silo, int load = 0) => new(SiloCapabilities.Cpu(silo), load);

    private static PlacementCandidate Gpu(string silo, long memoryMiB = 16384, int load = 0) => new(new SiloCapabilities(silo, 1, memoryMiB * MiB, "12.4"), load);

    private static ReplicaPlacement Needs(DeviceRequirement device, long minMiB = 0, params string[] avoid) =>
        new() { Device = device, MinGpuMemoryBytes = minMiB * MiB, AvoidSilos = avoid };

    [Fact]
    public void Gpu_replica_goes_only_to_a_gpu_silo()
    {
        var decision = ReplicaPlacementPolicy.Choose([Cpu("a"), Gpu("b", load: 5), Cpu("c")], Needs(DeviceRequirement.Gpu), "m/1/0");

        Assert.Equal("b", decision.Silo);
    }

    [Fact]
    public void Gpu_replica_skips_gpus_smaller_than_the_minimum_memory()
    {
        var silos = new[] { Gpu("small", memoryMiB: 8192), Gpu("large", memoryMiB: 40960, load: 3) };

        var decision = ReplicaPlacementPolicy.Choose(silos, Needs(DeviceRequirement.Gpu, minMiB: 16384), "m/1/0");

        Assert.Equal("large", decision.Silo);
    }

    [Fact]
    public void Gpu_replica_on_a_cpu_only_cluster_is_unschedulable_with_a_reason_naming_the_silos()
    {
        var decision = ReplicaPlacementPolicy.Choose([Cpu("10.0.0.1:11111@1"), Cpu("10.0.0.2:11111@1")], Needs(DeviceRequirement.Gpu, minMiB: 8192), "m/1/0");

        Assert.False(decision.IsSchedulable);
        Assert.Equal(
            "needs a GPU silo with ≥ 8192 MiB of GPU memory; the cluster has none: silo 10.0.0.1:11111@1 cpu, silo 10.0.0.2:11111@1 cpu",
            decision.UnschedulableReason);
    }

    [Fact]
    public void Gpu_replica_whose_memory_minimum_no_gpu_meets_is_unschedulable()
    {
        var decision = ReplicaPlacementPolicy.Choose([Gpu("g", memoryMiB: 8192)], Needs(DeviceRequirement.Gpu, minMiB: 16384), "m/1/0");

        Assert.Null(decision.Silo);
        Assert.Contains("silo g gpu (1 × 8192 MiB)", decision.UnschedulableReason);
    }

    [Fact]
    public void Cpu_replica_may_go_to_any_silo_and_takes_the_least_loaded()
    {
        var decision = ReplicaPlacementPolicy.Choose([Gpu("g", load: 4), Cpu("c1", load: 2), Cpu("c2", load: 1)], Needs(DeviceRequirement.Cpu), "m/1/0");

        Assert.Equal("c2", decision.Silo);
    }

    [Fact]
    public void Any_replica_prefers_a_gpu_silo_even_when_it_is_busier()
    {
        var decision = ReplicaPlacementPolicy.Choose([Cpu("c", load: 0), Gpu("g", load: 7)], Needs(DeviceRequirement.Any), "m/1/0");

        Assert.Equal("g", decision.Silo);
    }

    [Fact]
    public void Any_replica_falls_back_to_cpu_silos_when_there_is_no_gpu()
    {
        var decision = ReplicaPlacementPolicy.Choose([Cpu("c1", load: 3), Cpu("c2", load: 1)], Needs(DeviceRequirement.Any), "m/1/0");

        Assert.Equal("c2", decision.Silo);
    }

    [Fact]
    public void Replica_spreads_away_from_silos_holding_the_models_other_replicas()
    {
        var decision = ReplicaPlacementPolicy.Choose([Gpu("g1"), Gpu("g2", load: 9)], Needs(DeviceRequirement.Gpu, 0, "g1"), "m/1/1");

        Assert.Equal("g2", decision.Silo);
    }

    [Fact]
    public void Replica_shares_a_silo_when_every_eligible_silo_is_on_the_avoid_list()
    {
        var decision = ReplicaPlacementPolicy.Choose([Gpu("g1", load: 2), Gpu("g2", load: 1), Cpu("c")], Needs(DeviceRequirement.Gpu, 0, "g1", "g2"), "m/1/2");

        Assert.Equal("g2", decision.Silo);
    }

    [Fact]
    public void Ties_are_broken_the_same_way_every_time_by_the_grain_key()
    {
        var silos = new[] { Cpu("b"), Cpu("a"), Cpu("c") };

        var first = ReplicaPlacementPolicy.Choose(silos, Needs(DeviceRequirement.Cpu), "model/1/0").Silo;
        var again = ReplicaPlacementPolicy.Choose(silos.Reverse().ToArray(), Needs(DeviceRequirement.Cpu), "model/1/0").Silo;
        var expected = new[] { "a", "b", "c" }[ReplicaPlacementPolicy.StableHash("model/1/0") % 3];

        Assert.Equal(expected, first);
        Assert.Equal(first, again);
    }

    [Fact]
    public void Different_replicas_of_a_model_spread_over_tied_silos_by_their_keys()
    {
        var silos = new[] { Cpu("a"), Cpu("b"), Cpu("c"), Cpu("d") };

        var chosen = Enumerable.Range(0, 16)
            .Select(i => ReplicaPlacementPolicy.Choose(silos, Needs(DeviceRequirement.Cpu), $"model/1/{i}").Silo)
            .Distinct()
            .Count();

        Assert.True(chosen > 1, "every replica key hashed to the same silo");
    }

    [Fact]
    public void Stable_hash_is_fnv1a_and_does_not_depend_on_the_process()
    {
        Assert.Equal(2166136261u, ReplicaPlacementPolicy.StableHash(string.Empty));
        Assert.Equal(0xe40c292cu, ReplicaPlacementPolicy.StableHash("a"));
    }

    [Fact]
    public void No_silos_at_all_is_unschedulable_for_a_gpu_model_and_says_so()
    {
        var decision = ReplicaPlacementPolicy.Choose([], Needs(DeviceRequirement.Gpu), "m/1/0");

        Assert.Equal("needs a GPU silo; the cluster has none: no active silos", decision.UnschedulableReason);
    }
}

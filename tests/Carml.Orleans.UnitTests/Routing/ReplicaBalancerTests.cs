using Carml.Orleans.Gateway.Routing;
using Microsoft.Extensions.Time.Testing;

namespace Carml.Orleans.Tests.Routing;

public sealed class ReplicaBalancerTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void A_single_replica_is_picked_even_when_it_failed_or_is_excluded()
    {
        var balancer = new ReplicaBalancer(1, _time);
        balancer.Failed(0, TimeSpan.FromSeconds(10));

        Assert.Equal(0, balancer.Pick(new Random(1), exclude: 0, out _));
    }

    [Fact]
    public void The_replica_with_fewer_outstanding_requests_wins()
    {
        var balancer = new ReplicaBalancer(2, _time);
        Busy(balancer, 0, 3);
        Busy(balancer, 1, 1);
        var random = new Random(7);

        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(1, balancer.Pick(random, -1, out var skipped));
            Assert.False(skipped);
        }
    }

    [Fact]
    public void Power_of_two_choices_never_picks_the_busiest_replica_and_uses_both_others()
    {
        var balancer = new ReplicaBalancer(3, _time);
        Busy(balancer, 0, 5);
        Busy(balancer, 1, 1);
        var random = new Random(11);

        var picks = Enumerable.Range(0, 300).Select(n => balancer.Pick(random, -1, out _)).ToArray();

        Assert.DoesNotContain(0, picks);
        Assert.Contains(1, picks); // drawn together with the busiest: the less busy of the two
        Assert.Contains(2, picks);
        Assert.True(picks.Count(p => p == 2) > picks.Count(p => p == 1), "the idle replica wins every pair it is in");
    }

    [Fact]
    public void Ties_go_to_the_first_drawn_replica_so_idle_replicas_share_the_load()
    {
        var balancer = new ReplicaBalancer(2, _time);
        var random = new Random(3);

        var picks = Enumerable.Range(0, 1000).Select(n => balancer.Pick(random, -1, out _)).ToArray();

        Assert.InRange(picks.Count(p => p == 0), 350, 650);
        Assert.Equal(picks, Replay(balancer, new Random(3), 1000));
    }

    [Fact]
    public void A_replica_in_back_off_is_skipped_while_another_is_healthy_even_a_busier_one()
    {
        var balancer = new ReplicaBalancer(3, _time);
        Busy(balancer, 1, 4);
        Busy(balancer, 2, 2);
        balancer.Failed(0, TimeSpan.FromSeconds(5));
        var random = new Random(5);

        for (var i = 0; i < 50; i++)
        {
            Assert.Equal(2, balancer.Pick(random, -1, out var skipped));
            Assert.True(skipped);
        }

        Assert.True(balancer.IsBackingOff(0));
    }

    [Fact]
    public void A_failed_replica_is_picked_again_once_its_back_off_ends()
    {
        var balancer = new ReplicaBalancer(2, _time);
        Busy(balancer, 1, 1);
        balancer.Failed(0, TimeSpan.FromSeconds(5));
        Assert.Equal(1, balancer.Pick(new Random(1), -1, out _));

        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.False(balancer.IsBackingOff(0));
        Assert.Equal(0, balancer.Pick(new Random(1), -1, out var skipped));
        Assert.False(skipped);
    }

    [Fact]
    public void A_success_ends_the_back_off_at_once()
    {
        var balancer = new ReplicaBalancer(2, _time);
        balancer.Failed(0, TimeSpan.FromMinutes(1));

        balancer.Succeeded(0);

        Assert.False(balancer.IsBackingOff(0));
    }

    [Fact]
    public void When_every_replica_failed_the_one_whose_back_off_ends_first_is_picked()
    {
        var balancer = new ReplicaBalancer(3, _time);
        balancer.Failed(0, TimeSpan.FromSeconds(9));
        balancer.Failed(1, TimeSpan.FromSeconds(3));
        balancer.Failed(2, TimeSpan.FromSeconds(6));

        Assert.Equal(1, balancer.Pick(new Random(1), -1, out var skipped));
        Assert.True(skipped);
        Assert.Equal(2, balancer.Pick(new Random(1), exclude: 1, out _));
    }

    [Fact]
    public void The_replica_that_just_failed_is_avoided_when_another_exists()
    {
        var balancer = new ReplicaBalancer(2, _time);
        Busy(balancer, 1, 10);
        var random = new Random(2);

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(1, balancer.Pick(random, exclude: 0, out _));
        }
    }

    [Fact]
    public void Outstanding_requests_are_counted_in_and_out()
    {
        var balancer = new ReplicaBalancer(2, _time);

        balancer.Started(1);
        balancer.Started(1);
        balancer.Finished(1);

        Assert.Equal(0, balancer.Outstanding(0));
        Assert.Equal(1, balancer.Outstanding(1));
    }

    [Fact]
    public void A_balancer_needs_at_least_one_replica()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplicaBalancer(0, _time));
    }

    private static void Busy(ReplicaBalancer balancer, int replica, int requests)
    {
        for (var i = 0; i < requests; i++)
        {
            balancer.Started(replica);
        }
    }

    private static int[] Replay(ReplicaBalancer balancer, Random random, int count) =>
        Enumerable.Range(0, count).Select(n => balancer.Pick(random, -1, out _)).ToArray();
}

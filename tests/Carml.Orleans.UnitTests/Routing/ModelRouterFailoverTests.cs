using Carml.Orleans.Gateway;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Carml.Orleans.Tests.Routing;

/// <summary>The router's replica choice and failover over fake grains: which failures retry where, and what the caller gets when they run out.</summary>
public sealed class ModelRouterFailoverTests
{
    private static readonly InferenceRequest Request = new([new InferenceTensor("x", TensorDatatype.FP32, [1, 1], new byte[4])]);

    private readonly FakeGrainFactory _grains = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_replica_whose_silo_is_gone_is_retried_on_another_and_skipped_for_its_back_off()
    {
        var id = _grains.AddModel("m", replicas: 2);
        var router = Router(new FailoverOptions { ReplicaBackoff = TimeSpan.FromMinutes(5), BaseBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = TimeSpan.FromMilliseconds(5) });
        Replica(id, 0).FailWith(() => new SiloUnavailableException("silo is dead"));
        var balancer = (await router.ResolveAsync("m", "1")).Balancer;
        balancer.Started(1); // replica 1 looks busier, so the first try goes to replica 0

        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(id.ReplicaKey(1), Served(await router.InferAsync("m", "1", Request, Ct)));
        }

        balancer.Finished(1);
        Assert.Equal(1, Replica(id, 0).Calls); // once, then skipped while in back-off
        Assert.Equal(20, Replica(id, 1).Calls);
        Assert.Equal(1, router.Counters.ReplicaFailures);
        Assert.Equal(1, router.Counters.Recovered);
        Assert.True(router.Counters.BackoffSkips >= 1);
    }

    [Fact]
    public async Task A_single_replica_is_retried_on_its_own_key_until_orleans_activates_it_again()
    {
        var id = _grains.AddModel("m", replicas: 1);
        var router = Router();
        Replica(id, 0).Behaviour = (call, _, _) => call <= 2
            ? Task.FromException<InferenceResponse?>(FailoverClassifierTests.Rejection("target silo is dead"))
            : Task.FromResult<InferenceResponse?>(null);

        var response = await router.InferAsync("m", "1", Request, Ct);

        Assert.Equal(id.ReplicaKey(0), Served(response));
        Assert.Equal(3, Replica(id, 0).Calls);
        Assert.Equal(2, router.Counters.Retries);
    }

    [Theory]
    [InlineData(ModelErrorKind.InvalidArgument)]
    [InlineData(ModelErrorKind.PayloadTooLarge)]
    [InlineData(ModelErrorKind.DeadlineExceeded)]
    [InlineData(ModelErrorKind.FailedPrecondition)]
    public async Task Client_mistakes_are_answered_at_once_and_never_retried(ModelErrorKind kind)
    {
        var id = _grains.AddModel("m", replicas: 2);
        var router = Router();
        foreach (var i in new[] { 0, 1 })
        {
            Replica(id, i).FailWith(() => new ModelException(kind, "the request is wrong"));
        }

        var failure = await Assert.ThrowsAsync<ModelException>(() => router.InferAsync("m", "1", Request, Ct));

        Assert.Equal(kind, failure.Kind);
        Assert.Equal(1, Replica(id, 0).Calls + Replica(id, 1).Calls);
        Assert.Equal(0, router.Counters.Retries);
    }

    [Fact]
    public async Task Not_found_from_a_replica_is_not_retried_and_forgets_the_route()
    {
        var id = _grains.AddModel("m", replicas: 1);
        var router = Router();
        Replica(id, 0).FailWith(() => ModelException.UnknownModel("m", "1"));

        var failure = await Assert.ThrowsAsync<ModelException>(() => router.InferAsync("m", "1", Request, Ct));
        await Assert.ThrowsAsync<ModelException>(() => router.InferAsync("m", "1", Request, Ct));

        Assert.Equal(ModelErrorKind.NotFound, failure.Kind);
        Assert.Equal(2, Replica(id, 0).Calls);
        Assert.Equal(2, _grains.Models[id.Key].Reads); // the route was read again for the second request
    }

    [Fact]
    public async Task A_full_replica_hands_the_request_to_another_replica()
    {
        var id = _grains.AddModel("m", replicas: 2);
        var router = Router();
        Replica(id, 0).FailWith(() => new ModelException(ModelErrorKind.ResourceExhausted, "max_concurrent_requests reached"));

        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(id.ReplicaKey(1), Served(await router.InferAsync("m", "1", Request, Ct)));
        }

        Assert.Equal(0, router.Counters.ReplicaFailures); // full is not broken: no back-off
    }

    [Fact]
    public async Task A_full_single_replica_answers_resource_exhausted_without_retrying()
    {
        var id = _grains.AddModel("m", replicas: 1);
        var router = Router();
        Replica(id, 0).FailWith(() => new ModelException(ModelErrorKind.ResourceExhausted, "max_concurrent_requests reached"));

        var failure = await Assert.ThrowsAsync<ModelException>(() => router.InferAsync("m", "1", Request, Ct));

        Assert.Equal(ModelErrorKind.ResourceExhausted, failure.Kind);
        Assert.Equal(1, Replica(id, 0).Calls);
    }

    [Fact]
    public async Task When_every_try_fails_the_router_gives_up_with_unavailable_after_max_attempts()
    {
        var id = _grains.AddModel("m", replicas: 2);
        var router = Router(new FailoverOptions { MaxAttempts = 3, BaseBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = TimeSpan.FromMilliseconds(2) });
        Replica(id, 0).FailWith(() => new SiloUnavailableException("dead"));
        Replica(id, 1).FailWith(() => new ModelException(ModelErrorKind.Unavailable, "silo shutting down"));

        var failure = await Assert.ThrowsAsync<ModelException>(() => router.InferAsync("m", "1", Request, Ct));

        Assert.Equal(ModelErrorKind.Unavailable, failure.Kind);
        Assert.Equal(503, ErrorMapping.ToHttpStatus(failure.Kind));
        Assert.Equal(3, Replica(id, 0).Calls + Replica(id, 1).Calls);
        Assert.Equal(1, router.Counters.GiveUps);
    }

    [Fact]
    public async Task When_the_deadline_passes_during_retries_the_router_answers_deadline_exceeded()
    {
        var id = _grains.AddModel("m", replicas: 1);
        var router = Router(new FailoverOptions { MaxAttempts = 1000, BaseBackoff = TimeSpan.FromMilliseconds(5), MaxBackoff = TimeSpan.FromMilliseconds(20) });
        Replica(id, 0).FailWith(() => new SiloUnavailableException("dead"));

        // A second is long enough for several tries even on a loaded machine, and far too short for a thousand.
        var failure = await Assert.ThrowsAsync<ModelException>(() => router.InferAsync("m", "1", Request with { TimeoutMicroseconds = 1_000_000 }, Ct));

        Assert.Equal(ModelErrorKind.DeadlineExceeded, failure.Kind);
        Assert.Equal(504, ErrorMapping.ToHttpStatus(failure.Kind));
        Assert.InRange(Replica(id, 0).Calls, 2, 999);
    }

    [Fact]
    public async Task A_try_on_a_silo_that_never_answers_ends_at_the_request_deadline()
    {
        var id = _grains.AddModel("m", replicas: 1);
        var router = Router();
        Replica(id, 0).Behaviour = async (_, _, token) =>
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, token);
            return null;
        };

        var failure = await Assert.ThrowsAsync<ModelException>(() => router.InferAsync("m", "1", Request with { TimeoutMicroseconds = 100_000 }, Ct));

        Assert.Equal(ModelErrorKind.DeadlineExceeded, failure.Kind);
    }

    [Fact]
    public async Task A_retry_carries_only_the_time_left_of_the_request_timeout()
    {
        var id = _grains.AddModel("m", replicas: 2);
        var router = Router();
        Replica(id, 0).Behaviour = (call, _, _) => call == 1 ? Task.FromException<InferenceResponse?>(new SiloUnavailableException()) : Task.FromResult<InferenceResponse?>(null);
        Replica(id, 1).Behaviour = (call, _, _) => call == 1 ? Task.FromException<InferenceResponse?>(new SiloUnavailableException()) : Task.FromResult<InferenceResponse?>(null);

        await router.InferAsync("m", "1", Request with { TimeoutMicroseconds = 5_000_000 }, Ct);

        var seen = Replica(id, 0).TimeoutsSeen.Concat(Replica(id, 1).TimeoutsSeen).ToArray();
        Assert.Single(seen, t => t == 5_000_000); // only the first try has the whole timeout
        Assert.True(seen.Length >= 2, "the request was retried");
        Assert.All(seen.Where(t => t != 5_000_000), t => Assert.InRange(t, 1, 4_999_999));
    }

    [Fact]
    public async Task New_requests_go_to_the_replica_with_fewer_outstanding_requests()
    {
        var id = _grains.AddModel("m", replicas: 2);
        var router = Router();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        foreach (var i in new[] { 0, 1 })
        {
            Replica(id, i).Behaviour = async (_, _, _) =>
            {
                await release.Task;
                return null;
            };
        }

        // The first request holds one replica; while it does, every other request is sent to the idle one.
        var first = router.InferAsync("m", "1", Request, Ct);
        var busy = Replica(id, 0).Calls == 1 ? 0 : 1;
        Replica(id, 1 - busy).Behaviour = null;
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(id.ReplicaKey(1 - busy), Served(await router.InferAsync("m", "1", Request, Ct)));
        }

        release.SetResult();
        Assert.Equal(id.ReplicaKey(busy), Served(await first));
    }

    [Fact]
    public async Task A_route_that_cannot_be_refreshed_because_the_model_grain_silo_is_gone_keeps_serving()
    {
        var id = _grains.AddModel("m", replicas: 2);
        var router = Router(new FailoverOptions { ReplicaBackoff = TimeSpan.FromMinutes(5), BaseBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = TimeSpan.FromMilliseconds(5) });
        var balancer = (await router.ResolveAsync("m", "1")).Balancer;
        _grains.Models[id.Key].OnGetStatus = () => throw new SiloUnavailableException("the model grain's silo is dead");
        Replica(id, 0).FailWith(() => new SiloUnavailableException("dead"));
        balancer.Started(1); // replica 1 looks busier, so the first try goes to replica 0, fails, and expires the route

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(id.ReplicaKey(1), Served(await router.InferAsync("m", "1", Request, Ct)));
        }

        balancer.Finished(1);
        Assert.Equal(1, Replica(id, 0).Calls);
        Assert.True(router.Counters.StaleRoutes >= 1, "the cached route was used after its refresh failed");
    }

    [Fact]
    public async Task When_every_replica_is_full_the_request_is_refused_after_trying_each_once()
    {
        var id = _grains.AddModel("m", replicas: 3);
        var router = Router(new FailoverOptions { MaxAttempts = 10, BaseBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = TimeSpan.FromMilliseconds(5) });
        for (var i = 0; i < 3; i++)
        {
            Replica(id, i).FailWith(() => new ModelException(ModelErrorKind.ResourceExhausted, "replica full"));
        }

        var failure = await Assert.ThrowsAsync<ModelException>(() => router.InferAsync("m", "1", Request, Ct));

        Assert.Equal(ModelErrorKind.ResourceExhausted, failure.Kind);
        Assert.Equal(3, Replica(id, 0).Calls + Replica(id, 1).Calls + Replica(id, 2).Calls);
    }

    private ModelRouter Router(FailoverOptions? failover = null) => new(
        _grains,
        Options.Create(new GatewayOptions { RouteCacheSeconds = 60 }),
        TimeProvider.System,
        failover: Options.Create(failover ?? new FailoverOptions { BaseBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = TimeSpan.FromMilliseconds(5) }));

    private FakeReplicaGrain Replica(ModelId id, int index) => _grains.GetGrain<IModelReplicaGrain>(id.ReplicaKey(index)) as FakeReplicaGrain
        ?? throw new InvalidOperationException("not a fake");

    private static string Served(InferenceResponse response) => response.Outputs[0].Name;
}

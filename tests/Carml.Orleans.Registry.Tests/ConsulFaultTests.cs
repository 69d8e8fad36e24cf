using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Carml.Orleans.ConsulEmulator;
using Carml.Orleans.Registry.Consul;
using Carml.Orleans.Registry.Membership;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime;
using static Carml.Orleans.Registry.Tests.ConsulTarget;

namespace Carml.Orleans.Registry.Tests;

/// <summary>Bad input and faults: Consul unreachable at start and while running, a refused token, options.</summary>
public sealed class ConsulFaultTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Consul_unreachable_at_start_fails_the_membership_table_after_the_startup_timeout_with_a_clear_message()
    {
        var address = new Uri($"http://127.0.0.1:{ClosedPort()}/");
        var table = Table(CreateClient(address), TimeSpan.FromSeconds(1));
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<ConsulUnavailableException>(() => table.InitializeMembershipTableAsync(true, Ct));

        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(15));
        Assert.Contains("Cannot start", error.Message);
        Assert.Contains(address.ToString(), error.Message);
        Assert.Contains("not reachable within 1 s", error.Message);
        Assert.Contains(ConsulOptions.AddressVariable, error.Message);
    }

    [Fact]
    public async Task A_silo_starting_before_consul_waits_for_it_within_the_startup_timeout()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(cancellationToken: Ct);
        await consul.StopAsync();
        var table = Table(CreateClient(consul.Address), TimeSpan.FromSeconds(30));

        var starting = table.InitializeMembershipTableAsync(true, Ct);
        await Task.Delay(300, Ct);
        Assert.False(starting.IsCompleted, "Initialization finished while Consul was down.");
        await consul.StartAgainAsync(Ct);

        await starting.WaitAsync(TimeSpan.FromSeconds(20), Ct);
        Assert.NotNull((await CreateClient(consul.Address).KvGetAsync(table.Keys.Version, null, Ct)).Value);
    }

    [Fact]
    public async Task While_consul_is_unreachable_clients_keep_the_last_known_gateways_and_table_calls_fail_until_it_returns()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(cancellationToken: Ct);
        var client = CreateClient(consul.Address);
        var table = Table(client, TimeSpan.FromSeconds(5));
        await table.InitializeMembershipTableAsync(true, Ct);
        var silo = ConsulMembershipTableTests.NewEntry(SiloStatus.Active);
        Assert.True(await table.InsertRowAsync(silo, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        var gateways = GatewayList(client);
        var known = await gateways.GetGatewaysAsync(Ct);
        Assert.Single(known);

        await consul.StopAsync();

        Assert.Equal(known, await gateways.GetGatewaysAsync(Ct));
        await Assert.ThrowsAsync<ConsulUnavailableException>(() => table.ReadAllAsync(Ct));
        await Assert.ThrowsAsync<ConsulUnavailableException>(() => table.UpdateIAmAliveAsync(silo, Ct));

        await consul.StartAgainAsync(Ct);
        var second = ConsulMembershipTableTests.NewEntry(SiloStatus.Active);
        Assert.True(await table.InsertRowAsync(second, (await table.ReadAllAsync(Ct)).Version.Next(), Ct));
        Assert.Equal(2, (await gateways.GetGatewaysAsync(Ct)).Count);
    }

    [Fact]
    public async Task A_registry_watch_survives_consul_going_away_and_sees_changes_after_it_returns()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(cancellationToken: Ct);
        var registry = new ConsulRegistry(CreateClient(consul.Address), Options.Create(new RegistryOptions { Root = "carml/" }), NullLogger<ConsulRegistry>.Instance);
        await registry.PutAsync("watched", Bytes("before"), cancellationToken: Ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        stop.CancelAfter(TimeSpan.FromSeconds(30));
        await using var watch = registry.WatchAsync("watched", stop.Token).GetAsyncEnumerator(stop.Token);
        Assert.True(await watch.MoveNextAsync());

        await consul.StopAsync();
        var next = watch.MoveNextAsync().AsTask();
        await consul.StartAgainAsync(Ct);
        await registry.PutAsync("watched", Bytes("after"), cancellationToken: Ct);

        Assert.True(await next.WaitAsync(TimeSpan.FromSeconds(20), Ct));
        Assert.Equal("after", Text(watch.Current!.Value));
    }

    [Fact]
    public async Task A_request_without_a_token_gets_a_clear_403_error_that_is_not_retried()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(new ConsulEmulatorOptions { AclToken = "right-token" }, Ct);
        var before = consul.State.RequestCount;

        var error = await Assert.ThrowsAsync<ConsulAclException>(() => CreateClient(consul.Address).KvGetAsync("carml/x", null, Ct));

        Assert.Equal(1, consul.State.RequestCount - before);
        Assert.Contains("403", error.Message);
        Assert.Contains("no ACL token is configured", error.Message);
        Assert.Contains(ConsulOptions.TokenVariable, error.Message);
    }

    [Fact]
    public async Task A_wrong_token_gets_a_clear_403_error_that_never_shows_the_token()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(new ConsulEmulatorOptions { AclToken = "right-token" }, Ct);
        var logs = new ListLogger<ConsulClient>();
        var client = CreateClient(consul.Address, o => o.Token = "wrong-secret-token", logs);

        var error = await Assert.ThrowsAsync<ConsulAclException>(() => client.KvPutAsync("carml/x", [], null, Ct));

        Assert.Contains("unknown to Consul or its policy does not allow this", error.Message);
        Assert.DoesNotContain("wrong-secret-token", error.Message);
        Assert.DoesNotContain(logs.Messages, m => m.Contains("wrong-secret-token", StringComparison.Ordinal));
        Assert.True(await CreateClient(consul.Address, o => o.Token = "right-token").KvPutAsync("carml/x", [], null, Ct));
    }

    [Fact]
    public async Task A_refused_token_fails_the_silo_start_at_once_instead_of_waiting_for_the_timeout()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(new ConsulEmulatorOptions { AclToken = "right-token" }, Ct);
        var table = Table(CreateClient(consul.Address, o => o.Token = "wrong"), TimeSpan.FromSeconds(60));
        var clock = Stopwatch.StartNew();

        await Assert.ThrowsAsync<ConsulAclException>(() => table.InitializeMembershipTableAsync(true, Ct));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"Took {clock.Elapsed}.");
    }

    [Fact]
    public async Task Transient_failures_are_retried_with_backoff_before_the_client_gives_up()
    {
        var logs = new ListLogger<ConsulClient>();
        var client = CreateClient(new Uri($"http://127.0.0.1:{ClosedPort()}/"), o => o.MaxRetries = 3, logs);

        var error = await Assert.ThrowsAsync<ConsulUnavailableException>(() => client.KvGetAsync("carml/x", null, Ct));

        Assert.Equal(3, logs.Messages.Count(m => m.Contains("retry", StringComparison.Ordinal)));
        Assert.Contains("after 4 attempts", error.Message);
    }

    [Fact]
    public void Options_fall_back_to_CONSUL_HTTP_ADDR_and_CONSUL_HTTP_TOKEN_and_configuration_wins()
    {
        var environment = new Dictionary<string, string?> { [ConsulOptions.AddressVariable] = "10.1.2.3:8501", [ConsulOptions.TokenVariable] = "env-token" };

        var fromEnvironment = new ConsulOptions();
        fromEnvironment.ApplyEnvironment(name => environment.GetValueOrDefault(name));
        var configured = new ConsulOptions { Address = "https://consul.example:8501", Token = "configured" };
        configured.ApplyEnvironment(name => environment.GetValueOrDefault(name));
        var neither = new ConsulOptions();
        neither.ApplyEnvironment(_ => null);

        Assert.Equal("http://10.1.2.3:8501", fromEnvironment.Address);
        Assert.Equal("env-token", fromEnvironment.Token);
        Assert.Equal("https://consul.example:8501", configured.Address);
        Assert.Equal("configured", configured.Token);
        Assert.Equal(ConsulOptions.DefaultAddress, neither.Address);
        Assert.DoesNotContain("env-token", fromEnvironment.ToString());
    }

    [Fact]
    public void Options_reject_an_address_that_is_not_an_http_url()
    {
        var options = new ConsulOptions { Address = "ftp://consul:21" };

        Assert.Contains(options.Validate(), f => f.Contains("Carml:Consul:Address", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_key_name_with_reserved_characters_round_trips()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(cancellationToken: Ct);
        var client = CreateClient(consul.Address);
        const string key = "carml/orleans/c1/members/127.0.0.1:11111@12345 with space?&#";

        Assert.True(await client.KvPutAsync(key, Bytes("v"), null, Ct));

        Assert.Equal(key, (await client.KvGetAsync(key, null, Ct)).Value?.Key);
    }

    private readonly string _clusterId = "fault-" + Guid.NewGuid().ToString("N")[..6];

    private ConsulMembershipTable Table(ConsulClient client, TimeSpan startupTimeout) => new(
        client,
        Options.Create(new ClusterOptions { ClusterId = _clusterId, ServiceId = "carml" }),
        Options.Create(new ConsulClusteringOptions { StartupTimeout = startupTimeout }),
        NullLogger<ConsulMembershipTable>.Instance);

    private ConsulGatewayListProvider GatewayList(ConsulClient client) => new(
        client,
        Options.Create(new ClusterOptions { ClusterId = _clusterId, ServiceId = "carml" }),
        Options.Create(new ConsulClusteringOptions()),
        Options.Create(new GatewayOptions()),
        NullLogger<ConsulGatewayListProvider>.Instance);

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>Keeps formatted log messages (with exception text) for assertions.</summary>
public sealed class ListLogger<T> : ILogger<T>
{
    private readonly List<string> _messages = [];

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_messages)
            {
                return _messages.ToArray();
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_messages)
        {
            _messages.Add(formatter(state, exception) + " " + exception);
        }
    }
}

using System.Text.Json;
using Carml.Orleans.ConsulEmulator;
using Carml.Orleans.Registry.Catalog;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Registry.Tests;

/// <summary>Catalog registration: TTL check kept passing, re-registration after an agent restart, deregistration on stop.</summary>
public sealed class ServiceCatalogRegistrationTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Start_registers_a_passing_service_and_publishes_it_in_the_registry_and_stop_removes_both()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(cancellationToken: Ct);
        var client = ConsulTarget.CreateClient(consul.Address);
        var registry = new ConsulRegistry(client, Options.Create(new RegistryOptions()), NullLogger<ConsulRegistry>.Instance);
        var registration = Create(client, registry, new ServiceCatalogOptions { CheckTtl = TimeSpan.FromSeconds(10) });

        await registration.StartAsync(Ct);
        var entry = Assert.Single(await WaitForServicesAsync(client, passingOnly: true, count: 1));
        var published = await Eventually.WaitAsync(() => registry.GetAsync("agents/carml-silo/carml-silo-test-1", Ct), e => e is not null, Bound, "the agent is published in the registry");
        await registration.StopAsync(Ct);

        Assert.Equal("carml-silo-test-1", entry.Service.ID);
        Assert.Equal(11111, entry.Service.Port);
        Assert.Equal("127.0.0.1:11111@1", entry.Service.Meta!["silo_address"]);
        Assert.Contains("onnxruntime", entry.Service.Tags!);
        Assert.Equal(11111, JsonDocument.Parse(published!.Value).RootElement.GetProperty("Port").GetInt32());
        Assert.Empty((await client.HealthServiceAsync("carml-silo", false, null, Ct)).Value);
        Assert.Null(await registry.GetAsync("agents/carml-silo/carml-silo-test-1", Ct));
    }

    [Fact]
    public async Task A_restarted_agent_that_forgot_the_service_gets_it_registered_again()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(cancellationToken: Ct);
        var client = ConsulTarget.CreateClient(consul.Address);
        await using var registration = Create(client, null, new ServiceCatalogOptions { CheckTtl = TimeSpan.FromSeconds(1.5), PublishToRegistry = false });
        await registration.StartAsync(Ct);
        await WaitForServicesAsync(client, passingOnly: true, count: 1);

        consul.State.ForgetAgentRegistrations();
        Assert.Empty((await client.HealthServiceAsync("carml-silo", false, null, Ct)).Value);

        await WaitForServicesAsync(client, passingOnly: true, count: 1);
    }

    [Fact]
    public async Task Registration_survives_consul_being_unreachable_and_comes_back_with_it()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(cancellationToken: Ct);
        var client = ConsulTarget.CreateClient(consul.Address);
        await using var registration = Create(client, null, new ServiceCatalogOptions { CheckTtl = TimeSpan.FromSeconds(1.5), PublishToRegistry = false });
        await registration.StartAsync(Ct);
        await WaitForServicesAsync(client, passingOnly: true, count: 1);

        await consul.StopAsync();
        consul.State.ForgetAgentRegistrations();
        var requestsWhileDown = consul.State.RequestCount;
        await consul.StartAgainAsync(Ct);

        await WaitForServicesAsync(client, passingOnly: true, count: 1);
        Assert.True(consul.State.RequestCount > requestsWhileDown);
    }

    [Fact]
    public async Task An_unhealthy_process_reports_its_check_critical()
    {
        await using var consul = await ConsulEmulatorServer.StartAsync(cancellationToken: Ct);
        var client = ConsulTarget.CreateClient(consul.Address);
        var healthy = true;
        await using var registration = Create(client, null, new ServiceCatalogOptions { CheckTtl = TimeSpan.FromSeconds(1.5), PublishToRegistry = false }, () => healthy);
        await registration.StartAsync(Ct);
        await WaitForServicesAsync(client, passingOnly: true, count: 1);

        healthy = false;

        await WaitForServicesAsync(client, passingOnly: true, count: 0);
        Assert.Single((await client.HealthServiceAsync("carml-silo", false, null, Ct)).Value);
    }

    [Fact]
    public void Catalog_options_enforce_consul_minimums()
    {
        Assert.NotEmpty(new ServiceCatalogOptions { DeregisterCriticalServiceAfter = TimeSpan.FromSeconds(30) }.Validate());
        Assert.NotEmpty(new ServiceCatalogOptions { CheckTtl = TimeSpan.FromSeconds(5) }.Validate());
        Assert.Empty(new ServiceCatalogOptions { CheckTtl = TimeSpan.FromSeconds(5), PublishToRegistry = false }.Validate());
        Assert.Empty(new ServiceCatalogOptions().Validate());
    }

    private static ServiceCatalogRegistration Create(ConsulClient client, IRegistry? registry, ServiceCatalogOptions options, Func<bool>? healthy = null) => new(
        client,
        registry,
        options,
        () => new AgentServiceRegistration
        {
            ID = "carml-silo-test-1",
            Name = "carml-silo",
            Address = "127.0.0.1",
            Port = 11111,
            Tags = ["onnxruntime", "orleans"],
            Meta = new Dictionary<string, string> { ["silo_address"] = "127.0.0.1:11111@1", ["gpu_count"] = "0" },
        },
        healthy ?? (() => true),
        NullLogger.Instance,
        TimeProvider.System);

    private static async Task<IReadOnlyList<ServiceHealthEntry>> WaitForServicesAsync(ConsulClient client, bool passingOnly, int count) =>
        await Eventually.WaitAsync(
            async () => (await client.HealthServiceAsync("carml-silo", passingOnly, null, Ct)).Value,
            entries => entries.Count == count,
            Bound,
            $"{count} {(passingOnly ? "passing " : string.Empty)}carml-silo instance(s) in the catalog");
}

using System.Globalization;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Configuration;
using Orleans.Runtime;

namespace Carml.Orleans.Registry.Catalog;

/// <summary>Registers silos (<c>carml-silo</c>) and gateways (<c>carml-gateway</c>) in Consul's catalog.</summary>
public static class CatalogHostingExtensions
{
    /// <summary>
    /// A silo registers <c>carml-silo</c> once it is Active and deregisters first thing on shutdown; its TTL check passes
    /// while the silo is Active.
    /// </summary>
    public static IServiceCollection AddCarmlSiloCatalog(this IServiceCollection services, IConfiguration configuration)
    {
        AddCatalogOptions(services, configuration);
        services.AddSingleton<SiloCatalogRegistration>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<SiloCatalogRegistration>());
        return services;
    }

    /// <summary>A process (the gateway) registers the service <paramref name="describe"/> returns while the host runs.</summary>
    public static IServiceCollection AddCarmlServiceCatalog(
        this IServiceCollection services,
        IConfiguration configuration,
        Func<IServiceProvider, AgentServiceRegistration> describe,
        Func<IServiceProvider, bool>? isHealthy = null)
    {
        AddCatalogOptions(services, configuration);
        services.AddHostedService(sp => new CatalogHostedService(sp, describe, isHealthy));
        return services;
    }

    internal static ServiceCatalogRegistration Create(IServiceProvider services, Func<AgentServiceRegistration> describe, Func<bool> isHealthy) =>
        new(
            services.GetRequiredService<ConsulClient>(),
            services.GetService<IRegistry>(),
            services.GetRequiredService<IOptions<ServiceCatalogOptions>>().Value,
            describe,
            isHealthy,
            services.GetRequiredService<ILoggerFactory>().CreateLogger<ServiceCatalogRegistration>(),
            services.GetService<TimeProvider>() ?? TimeProvider.System);

    internal static Dictionary<string, string> BaseMeta(ServiceCatalogOptions options) => new()
    {
        ["gpu_count"] = options.GpuCount.ToString(CultureInfo.InvariantCulture),
        ["frameworks"] = "onnxruntime",
        ["version"] = typeof(CatalogHostingExtensions).Assembly.GetName().Version?.ToString() ?? "0",
    };

    internal static List<string> BaseTags(ServiceCatalogOptions options)
    {
        var tags = new List<string> { "onnxruntime" };
        if (options.GpuCount > 0)
        {
            tags.Add("gpu");
        }

        tags.AddRange(options.Tags);
        return tags;
    }

    private static void AddCatalogOptions(IServiceCollection services, IConfiguration configuration)
    {
        services.AddConsulClient(configuration);
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<ServiceCatalogOptions>()
            .Bind(configuration.GetSection(ServiceCatalogOptions.Section))
            .Validate(o => o.Validate().Count == 0, "Carml:Catalog is not valid: CheckTtl ≥ 10 s (≥ 1 s without PublishToRegistry), DeregisterCriticalServiceAfter ≥ 1 min, GpuCount ≥ 0.")
            .ValidateOnStart();
    }

    private sealed class CatalogHostedService(
        IServiceProvider services,
        Func<IServiceProvider, AgentServiceRegistration> describe,
        Func<IServiceProvider, bool>? isHealthy) : IHostedService
    {
        private ServiceCatalogRegistration? _registration;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            if (!services.GetRequiredService<IOptions<ServiceCatalogOptions>>().Value.Enabled)
            {
                return Task.CompletedTask;
            }

            _registration = Create(services, () => describe(services), () => isHealthy?.Invoke(services) ?? true);
            return _registration.StartAsync(cancellationToken);
        }

        public Task StopAsync(CancellationToken cancellationToken) => _registration?.StopAsync(cancellationToken) ?? Task.CompletedTask;
    }
}

/// <summary>The silo's catalog entry, tied to the silo lifecycle: registered at Active, deregistered when stopping.</summary>
public sealed class SiloCatalogRegistration(
    IServiceProvider services,
    ILocalSiloDetails silo,
    ISiloStatusOracle status,
    IOptions<ClusterOptions> cluster,
    IOptions<ServiceCatalogOptions> options) : ILifecycleParticipant<ISiloLifecycle>
{
    private ServiceCatalogRegistration? _registration;

    public AgentServiceRegistration? Registration => _registration?.Registration;

    public void Participate(ISiloLifecycle lifecycle)
    {
        if (!options.Value.Enabled)
        {
            return;
        }

        lifecycle.Subscribe(
            nameof(SiloCatalogRegistration),
            ServiceLifecycleStage.Active,
            ct =>
            {
                _registration = CatalogHostingExtensions.Create(services, Describe, () => status.CurrentStatus == SiloStatus.Active);
                return _registration.StartAsync(ct);
            },
            ct => _registration?.StopAsync(ct) ?? Task.CompletedTask);
    }

    private AgentServiceRegistration Describe()
    {
        var endpoint = silo.SiloAddress.Endpoint;
        var meta = CatalogHostingExtensions.BaseMeta(options.Value);
        meta["silo_address"] = silo.SiloAddress.ToParsableString();
        meta["cluster_id"] = cluster.Value.ClusterId;
        meta["gateway_port"] = (silo.GatewayAddress?.Endpoint.Port ?? 0).ToString(CultureInfo.InvariantCulture);
        meta["silo_name"] = silo.Name;
        var tags = CatalogHostingExtensions.BaseTags(options.Value);
        tags.Add("orleans");
        return new AgentServiceRegistration
        {
            ID = $"{ServiceCatalogOptions.SiloServiceName}-{endpoint.Address}-{endpoint.Port}".Replace(':', '-'),
            Name = ServiceCatalogOptions.SiloServiceName,
            Address = endpoint.Address.ToString(),
            Port = endpoint.Port,
            Tags = tags,
            Meta = meta,
        };
    }
}

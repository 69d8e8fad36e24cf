using Carml.Orleans.Registry.Consul;
using Carml.Orleans.Registry.Membership;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Hosting;
using Orleans.Messaging;

namespace Carml.Orleans.Registry;

/// <summary>Registers the Consul client, the registry, and Orleans clustering over Consul.</summary>
public static class ConsulHostingExtensions
{
    /// <summary>
    /// Adds the typed <see cref="ConsulClient"/> bound to <c>Carml:Consul</c> (falling back to <c>CONSUL_HTTP_ADDR</c> and
    /// <c>CONSUL_HTTP_TOKEN</c>), validated when the host starts.
    /// </summary>
    public static IServiceCollection AddConsulClient(this IServiceCollection services, IConfiguration configuration)
    {
        if (services.Any(d => d.ServiceType == typeof(ConsulClient)))
        {
            return services;
        }

        services.AddOptions<ConsulOptions>()
            .Bind(configuration.GetSection(ConsulOptions.Section))
            .PostConfigure(o => o.ApplyEnvironment())
            .Validate(o => o.Validate().Count == 0, "Carml:Consul is not valid: check Address (an http(s) URL), RequestTimeout and BlockingWait.")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        // The client logs its own retries and failures; the factory's per-request logs would only add noise.
        services.AddHttpClient<ConsulClient>().RemoveAllLoggers();
        return services;
    }

    /// <summary>Adds <see cref="IRegistry"/> on Consul (cluster mode).</summary>
    public static IServiceCollection AddConsulRegistry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddConsulClient(configuration);
        services.AddOptions<RegistryOptions>().Bind(configuration.GetSection(RegistryOptions.Section));
        services.TryAddSingleton<IRegistry, ConsulRegistry>();
        return services;
    }

    /// <summary>Silos: keep the Orleans membership table in Consul (<c>Carml:Consul</c>, <c>Carml:Consul:Clustering</c>).</summary>
    public static ISiloBuilder UseConsulClustering(this ISiloBuilder builder, IConfiguration configuration, Action<ConsulClusteringOptions>? configure = null)
    {
        AddClusteringOptions(builder.Services, configuration, configure);
        builder.Services.AddSingleton<IMembershipTable, ConsulMembershipTable>();
        return builder;
    }

    /// <summary>Clients: find the silos' gateways in the Consul membership table.</summary>
    public static IClientBuilder UseConsulClustering(this IClientBuilder builder, IConfiguration configuration, Action<ConsulClusteringOptions>? configure = null)
    {
        AddClusteringOptions(builder.Services, configuration, configure);
        builder.Services.AddSingleton<IGatewayListProvider, ConsulGatewayListProvider>();
        return builder;
    }

    private static void AddClusteringOptions(IServiceCollection services, IConfiguration configuration, Action<ConsulClusteringOptions>? configure)
    {
        services.AddConsulClient(configuration);
        var options = services.AddOptions<ConsulClusteringOptions>().Bind(configuration.GetSection(ConsulClusteringOptions.Section));
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.Validate(o => o.StartupTimeout >= TimeSpan.Zero, "Carml:Consul:Clustering:StartupTimeout must not be negative.").ValidateOnStart();
    }
}

using Microsoft.Extensions.Options;
using Orleans.Configuration;
using OrleansGatewayOptions = Orleans.Configuration.GatewayOptions;

namespace Carml.Orleans.Gateway.Cluster;

/// <summary>How quickly the gateway, as an Orleans client, notices a silo that stopped answering.</summary>
public static class ClusterClientFailureDetection
{
    /// <summary>
    /// Applies <see cref="ClusterClientOptions.ResponseTimeout"/> (a call to a dead silo fails with a timeout the router
    /// retries) and <see cref="ClusterClientOptions.GatewayListRefreshPeriod"/> to the Orleans client.
    /// </summary>
    public static IClientBuilder ConfigureFailureDetection(this IClientBuilder client)
    {
        client.Services.AddOptions<ClientMessagingOptions>()
            .Configure<IOptions<ClusterClientOptions>>((messaging, carml) => messaging.ResponseTimeout = carml.Value.ResponseTimeout);
        client.Services.AddOptions<OrleansGatewayOptions>()
            .Configure<IOptions<ClusterClientOptions>>((gateways, carml) => gateways.GatewayListRefreshPeriod = carml.Value.GatewayListRefreshPeriod);
        return client;
    }
}

using System.Net;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Messaging;
using Orleans.Runtime;

namespace Carml.Orleans.Registry.Membership;

/// <summary>
/// Tells Orleans clients (the gateway in cluster mode) which silos accept client connections: the Active rows of the
/// Consul membership table with a proxy port. When Consul cannot be reached it answers with the last list it read, so
/// clients keep using the silos they know.
/// </summary>
public sealed partial class ConsulGatewayListProvider : IGatewayListProvider
{
    private readonly ConsulClient _consul;
    private readonly ConsulClusteringOptions _options;
    private readonly ILogger<ConsulGatewayListProvider> _logger;
    private readonly TimeProvider _time;
    private readonly ConsulMembershipReader _reader;
    private IList<Uri>? _lastKnown;

    public ConsulGatewayListProvider(
        ConsulClient consul,
        IOptions<ClusterOptions> clusterOptions,
        IOptions<ConsulClusteringOptions> options,
        IOptions<GatewayOptions> gatewayOptions,
        ILogger<ConsulGatewayListProvider> logger,
        TimeProvider? time = null)
    {
        _consul = consul;
        _options = options.Value;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        MaxStaleness = gatewayOptions.Value.GatewayListRefreshPeriod;
        _reader = new ConsulMembershipReader(consul, new MembershipKeys(_options.KeyRoot, clusterOptions.Value.ClusterId), logger);
    }

    public TimeSpan MaxStaleness { get; }

    public bool IsUpdatable => true;

    public Task InitializeGatewayListProvider() => InitializeGatewayListProviderAsync(CancellationToken.None);

    public Task InitializeGatewayListProviderAsync(CancellationToken cancellationToken) =>
        ConsulStartup.RetryUntilReachableAsync(
            _consul, _options.StartupTimeout, "the Orleans gateway list", async ct => await GetGatewaysAsync(ct).ConfigureAwait(false), _logger, _time, cancellationToken);

    public Task<IList<Uri>> GetGateways() => GetGatewaysAsync(CancellationToken.None);

    public async Task<IList<Uri>> GetGatewaysAsync(CancellationToken cancellationToken)
    {
        try
        {
            var (table, _) = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var gateways = table.Members
                .Select(member => member.Item1)
                .Where(entry => entry.Status == SiloStatus.Active && entry.ProxyPort != 0)
                .Select(entry => SiloAddress.New(new IPEndPoint(entry.SiloAddress.Endpoint.Address, entry.ProxyPort), entry.SiloAddress.Generation).ToGatewayUri())
                .ToList();
            _lastKnown = gateways;
            return gateways;
        }
        catch (ConsulUnavailableException e) when (_lastKnown is not null)
        {
            LogUsingLastKnown(_logger, e, _lastKnown.Count);
            return _lastKnown;
        }
    }

    [LoggerMessage(EventId = 5221, Level = LogLevel.Warning, Message = "Consul is unreachable; keeping the last known {Count} gateway(s)")]
    private static partial void LogUsingLastKnown(ILogger logger, Exception exception, int count);
}

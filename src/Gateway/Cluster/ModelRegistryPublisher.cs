using System.Text.Json;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Registry;
using Carml.Orleans.Registry.Catalog;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Cluster;

/// <summary>
/// Cluster mode: publishes every registered model version under <c>models/&lt;name&gt;/&lt;version&gt;</c> in the registry
/// (JSON: state, framework, execution provider, artifact), as TTL keys renewed every third of
/// <see cref="ServiceCatalogOptions.CheckTtl"/>, so the models can be browsed in the Consul UI. The grains stay the
/// source of truth; a key of a deleted model expires. Consul being unreachable is logged and retried.
/// </summary>
public sealed partial class ModelRegistryPublisher(
    IGrainFactory grains,
    IRegistry registry,
    IOptions<ServiceCatalogOptions> options,
    ServerReadiness readiness,
    ILogger<ModelRegistryPublisher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var ttl = options.Value.CheckTtl;
        using var timer = new PeriodicTimer(ttl / 3);
        do
        {
            if (!options.Value.PublishToRegistry || !readiness.Started)
            {
                continue;
            }

            try
            {
                await PublishAsync(ttl, stoppingToken);
            }
            catch (Exception e) when (e is ConsulException or HttpRequestException or TimeoutException or OrleansMessageRejectionException or SiloUnavailableException
                || (e is OperationCanceledException && !stoppingToken.IsCancellationRequested))
            {
                LogPublishFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private async Task PublishAsync(TimeSpan ttl, CancellationToken cancellationToken)
    {
        await foreach (var id in grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).AllVersionsAsync())
        {
            var status = await grains.GetGrain<IModelGrain>(id.Key).GetStatusAsync();
            if (status is null)
            {
                continue;
            }

            var value = JsonSerializer.SerializeToUtf8Bytes(new
            {
                name = id.Name,
                version = id.Version,
                state = status.State.ToString(),
                reason = status.Reason,
                framework = status.Manifest.Framework,
                execution_provider = status.ExecutionProvider,
                sha256 = status.Artifact.Sha256,
                size_bytes = status.Artifact.SizeBytes,
                ready_at = status.ReadyAt,
            });
            try
            {
                await registry.PutAsync($"models/{id.Name}/{id.Version}", value, new RegistryWriteOptions { Ttl = ttl }, cancellationToken);
            }
            catch (ConsulException e) when (e is not ConsulUnavailableException and not ConsulAclException)
            {
                // Another gateway's session holds the key: it publishes this model.
                LogHeldElsewhere(logger, id.Name, id.Version, e.Message);
            }
        }
    }

    [LoggerMessage(EventId = 3111, Level = LogLevel.Warning, Message = "Could not publish the models to the registry (Consul or the cluster unreachable); will retry")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3112, Level = LogLevel.Debug, Message = "Model {Name} version {Version} is published by another gateway: {Reason}")]
    private static partial void LogHeldElsewhere(ILogger logger, string name, string version, string reason);
}

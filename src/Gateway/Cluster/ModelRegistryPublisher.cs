using System.Text.Json;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Registry;
using Carml.Orleans.Registry.Catalog;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Cluster;

/// <summary>
/// Cluster mode: publishes every registered model version under <c>models/&lt;name&gt;/&lt;version&gt;</c> in the registry
/// (JSON: state, framework, execution provider, artifact) so the models can be browsed in the Consul UI. Every gateway
/// runs it, but only one publishes at a time: they elect it through the lock key <c>locks/model-publisher</c>
/// (<see cref="ElectedKeyPublisher"/>). The elected one walks the catalog every third of
/// <see cref="ServiceCatalogOptions.CheckTtl"/>, writes a key only when its value changed and deletes the keys of deleted
/// versions; the keys are held by its session (TTL <see cref="ServiceCatalogOptions.CheckTtl"/>), so they stay while it
/// lives and expire if it dies, and the next gateway takes over. The grains stay the source of truth; Consul or the
/// cluster being unreachable is logged and retried.
/// </summary>
public sealed partial class ModelRegistryPublisher(
    IGrainFactory grains,
    ConsulClient consul,
    IOptions<RegistryOptions> registryOptions,
    IOptions<ServiceCatalogOptions> options,
    ServerReadiness readiness,
    GatewayEndpoints endpoints,
    ILogger<ModelRegistryPublisher> logger) : BackgroundService
{
    /// <summary>The lock key, relative to the registry root.</summary>
    public const string LockKey = "locks/model-publisher";

    /// <summary>The models' directory, relative to the registry root.</summary>
    public const string ModelsDirectory = "models/";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var catalog = options.Value;
        if (!catalog.PublishToRegistry)
        {
            return;
        }

        var root = RegistryOptions.NormalizeRoot(registryOptions.Value.Root);
        var period = catalog.CheckTtl / 3;

        // Campaign only once this gateway serves: a gateway that cannot reach the cluster should not win the election.
        using (var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200)))
        {
            while (!readiness.Started && await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
            }
        }

        var publisher = new ElectedKeyPublisher(
            consul,
            new ElectedKeyPublisherOptions
            {
                Election = new ConsulLeaderElectionOptions
                {
                    LockKey = root + LockKey,
                    SessionTtl = catalog.CheckTtl,
                    LockDelay = catalog.PublisherLockDelay,
                    Candidate = $"{ServiceCatalogOptions.GatewayServiceName} {endpoints.Http}",
                },
                Prefix = root + ModelsDirectory,
                Period = period,
                RetryDelay = period,
            },
            ct => DesiredKeysAsync(root, ct),
            logger);
        await publisher.RunAsync(stoppingToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyDictionary<string, byte[]>> DesiredKeysAsync(string root, CancellationToken cancellationToken)
    {
        var keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        await foreach (var id in grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).AllVersionsAsync().ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var status = await grains.GetGrain<IModelGrain>(id.Key).GetStatusAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            if (status is null)
            {
                continue;
            }

            keys[$"{root}{ModelsDirectory}{id.Name}/{id.Version}"] = JsonSerializer.SerializeToUtf8Bytes(new
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
        }

        LogDesired(logger, keys.Count);
        return keys;
    }

    [LoggerMessage(EventId = 3111, Level = LogLevel.Debug, Message = "The model catalog lists {Count} published version(s)")]
    private static partial void LogDesired(ILogger logger, int count);
}

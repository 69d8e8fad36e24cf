namespace Carml.Orleans.Registry.Catalog;

/// <summary>How a process registers itself in Consul's service catalog. Section <c>Carml:Catalog</c>.</summary>
public sealed class ServiceCatalogOptions
{
    public const string Section = "Carml:Catalog";
    public const string SiloServiceName = "carml-silo";
    public const string GatewayServiceName = "carml-gateway";

    public bool Enabled { get; set; } = true;

    /// <summary>TTL of the service's check; this process marks it passing three times per TTL.</summary>
    public TimeSpan CheckTtl { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Consul removes the service once its check has been critical this long (Consul's minimum is 1 minute).</summary>
    public TimeSpan DeregisterCriticalServiceAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Extra tags, e.g. a rack or a hardware class.</summary>
    public List<string> Tags { get; set; } = [];

    /// <summary>GPUs this host offers to models; above 0 the service is tagged <c>gpu</c>. Silos default to what the agent
    /// hardware detector finds (nvidia-smi or <c>Carml:Agent:Gpus</c>).</summary>
    public int GpuCount { get; set; }

    /// <summary>
    /// Address to publish for a gateway when it listens on all interfaces (0.0.0.0 or ::), e.g. the host's or the
    /// container's IP. Silos publish <c>Carml:Silo:AdvertisedAddress</c>.
    /// </summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>Also publish the process under <c>&lt;root&gt;agents/</c> in the KV store, with a TTL.</summary>
    public bool PublishToRegistry { get; set; } = true;

    /// <summary>
    /// Lock-delay of the session through which the gateways elect the one that publishes the models (Consul: 0–60 s,
    /// default 15 s): after the publisher dies, the next one takes over once its session expired plus this delay.
    /// </summary>
    public TimeSpan PublisherLockDelay { get; set; } = TimeSpan.FromSeconds(15);

    public IReadOnlyList<string> Validate()
    {
        var failures = new List<string>();
        if (CheckTtl < TimeSpan.FromSeconds(1))
        {
            failures.Add("Carml:Catalog:CheckTtl must be at least 1 second.");
        }

        if (PublishToRegistry && CheckTtl < TimeSpan.FromSeconds(10))
        {
            failures.Add("Carml:Catalog:CheckTtl must be at least 10 seconds when PublishToRegistry is on (Consul's least session TTL).");
        }

        if (DeregisterCriticalServiceAfter < TimeSpan.FromMinutes(1))
        {
            failures.Add("Carml:Catalog:DeregisterCriticalServiceAfter must be at least 1 minute (Consul's minimum).");
        }

        if (PublisherLockDelay < TimeSpan.Zero || PublisherLockDelay > TimeSpan.FromSeconds(60))
        {
            failures.Add("Carml:Catalog:PublisherLockDelay must be between 0 and 60 seconds (Consul's range).");
        }

        if (GpuCount < 0)
        {
            failures.Add("Carml:Catalog:GpuCount must not be negative.");
        }

        return failures;
    }
}

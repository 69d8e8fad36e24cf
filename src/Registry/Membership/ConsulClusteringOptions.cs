namespace Carml.Orleans.Registry.Membership;

/// <summary>Orleans clustering over Consul. Section <c>Carml:Consul:Clustering</c>.</summary>
public sealed class ConsulClusteringOptions
{
    public const string Section = "Carml:Consul:Clustering";

    /// <summary>Root of CarML's keys; the table lives under <c>&lt;root&gt;orleans/&lt;clusterId&gt;/</c>.</summary>
    public string KeyRoot { get; set; } = "carml/";

    /// <summary>
    /// How long a starting silo or client keeps trying to reach Consul before it fails with a clear error. 0 = fail on the
    /// first unsuccessful request (after the client's own retries).
    /// </summary>
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

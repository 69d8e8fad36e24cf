namespace Carml.Orleans.Registry.Membership;

/// <summary>
/// Where one cluster's membership table lives in Consul's KV store. Every prefix ends with '/', so cluster <c>c1</c> never
/// reads the keys of <c>c10</c>:
/// <code>
/// &lt;root&gt;orleans/&lt;clusterId&gt;/version               {"Version": n}; its ModifyIndex is the table version's ETag
/// &lt;root&gt;orleans/&lt;clusterId&gt;/members/&lt;silo&gt;        the row (JSON); its ModifyIndex is the row's ETag
/// &lt;root&gt;orleans/&lt;clusterId&gt;/iamalive/&lt;silo&gt;       the last heartbeat, kept apart so it never changes the row's ETag
/// </code>
/// </summary>
public sealed class MembershipKeys(string keyRoot, string clusterId)
{
    public string Cluster { get; } = RegistryOptions.NormalizeRoot(keyRoot) + "orleans/" + Segment(clusterId) + "/";

    public string Version => Cluster + "version";

    public string Members => Cluster + "members/";

    public string IAmAlive => Cluster + "iamalive/";

    public string Member(string silo) => Members + Segment(silo);

    public string IAmAliveOf(string silo) => IAmAlive + Segment(silo);

    private static string Segment(string value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(value);
        if (value.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{value}' cannot be a key segment: it contains '/'.", nameof(value));
        }

        return value;
    }
}

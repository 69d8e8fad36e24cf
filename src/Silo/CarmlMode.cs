using Microsoft.Extensions.Configuration;

namespace Carml.Orleans.Silo;

/// <summary>How the processes form a system: one process with an in-process silo, or silos clustered through Consul.</summary>
public enum CarmlMode
{
    /// <summary>One host: localhost clustering, embedded registry and store (the default).</summary>
    Standalone,

    /// <summary>Silo processes cluster through Consul; gateways are Orleans clients that find them there.</summary>
    Cluster,
}

public static class CarmlModeConfiguration
{
    /// <summary>Configuration key of the mode: <c>standalone</c> (default) or <c>cluster</c>.</summary>
    public const string Key = "Carml:Mode";

    public static CarmlMode Read(IConfiguration configuration)
    {
        var value = configuration[Key];
        if (string.IsNullOrWhiteSpace(value) || string.Equals(value, "standalone", StringComparison.OrdinalIgnoreCase))
        {
            return CarmlMode.Standalone;
        }

        if (string.Equals(value, "cluster", StringComparison.OrdinalIgnoreCase))
        {
            return CarmlMode.Cluster;
        }

        throw new InvalidOperationException($"{Key} is '{value}'; use 'standalone' or 'cluster'.");
    }
}

using Microsoft.Extensions.Configuration;
using Orleans.Dashboard;

namespace Carml.Orleans.Silo.Telemetry;

/// <summary>The Orleans Dashboard switch. Section <c>Carml:Dashboard</c>; off by default.</summary>
public sealed class DashboardSettings
{
    public const string Section = "Carml:Dashboard";

    /// <summary>Serve the Orleans Dashboard (the silos must have it too: every silo of a cluster needs the same setting).</summary>
    public bool Enabled { get; set; }

    /// <summary>Where the gateway serves it.</summary>
    public string Path { get; set; } = "/dashboard";

    public static DashboardSettings Read(IConfiguration configuration) =>
        configuration.GetSection(Section).Get<DashboardSettings>() ?? new DashboardSettings();
}

/// <summary>
/// What silos and Orleans clients add for observability: Orleans' activity propagation (grain calls continue the
/// caller's trace, and carry it in the RequestContext) and, when enabled, the Orleans Dashboard's services.
/// </summary>
public static class SiloObservability
{
    public static ISiloBuilder AddCarmlObservability(this ISiloBuilder silo, IConfiguration configuration)
    {
        silo.AddActivityPropagation();
        if (DashboardSettings.Read(configuration).Enabled)
        {
            silo.AddDashboard();
        }

        return silo;
    }

    public static IClientBuilder AddCarmlObservability(this IClientBuilder client, IConfiguration configuration)
    {
        client.AddActivityPropagation();
        if (DashboardSettings.Read(configuration).Enabled)
        {
            client.AddDashboard();
        }

        return client;
    }
}

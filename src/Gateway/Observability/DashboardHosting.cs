using Carml.Orleans.Silo.Telemetry;
using Orleans.Dashboard;

namespace Carml.Orleans.Gateway.Observability;

/// <summary>
/// The Orleans Dashboard at <c>Carml:Dashboard:Path</c> (default <c>/dashboard</c>) when <c>Carml:Dashboard:Enabled</c>
/// is true. Its services are added on the silo (standalone) or on the gateway's Orleans client (cluster mode, where
/// every silo must enable it too) by <see cref="SiloObservability"/>.
/// </summary>
public static class DashboardHosting
{
    /// <summary>
    /// Maps the dashboard's endpoints; null when it is disabled. The one place to put an authorization policy in front
    /// of it (<c>RequireAuthorization</c> on the returned group).
    /// </summary>
    public static RouteGroupBuilder? MapCarmlDashboard(this IEndpointRouteBuilder endpoints)
    {
        var settings = DashboardSettings.Read(endpoints.ServiceProvider.GetRequiredService<IConfiguration>());
        if (!settings.Enabled)
        {
            return null;
        }

        var path = "/" + settings.Path.Trim('/');
        return endpoints.MapOrleansDashboard(path);
    }
}

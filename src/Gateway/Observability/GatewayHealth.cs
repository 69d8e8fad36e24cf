using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Carml.Orleans.Gateway.Observability;

/// <summary>The components' health at one moment: ok only when every component is.</summary>
public sealed record HealthReport(bool Healthy, IReadOnlyDictionary<string, ComponentHealth> Components);

/// <summary>
/// The one health logic behind <c>/healthz</c>, the gRPC health service (<c>grpc.health.v1.Health</c>) and the gateway's
/// Consul TTL check: start-up finished, the cluster answers a grain call that reads persisted state, the run store
/// answers. The last report is kept so the Consul check (which must answer at once) reads a recent one.
/// </summary>
public sealed class GatewayHealth(ServerReadiness readiness, IGrainFactory grains, IRunStore runs, TimeProvider time)
{
    private static readonly TimeSpan Freshness = TimeSpan.FromSeconds(10);

    private HealthReport? _last;
    private long _lastAt;
    private int _refreshing;

    public async Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        var components = new Dictionary<string, ComponentHealth>
        {
            ["startup"] = new(readiness.Started ? "ok" : "starting", 0),
            ["cluster_and_grain_storage"] = await HealthProbe.RunAsync(() =>
                grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).ListAsync(null, 1), cancellationToken),
            ["run_store"] = await HealthProbe.RunAsync(() => runs.SearchAsync(new RunQuery { PageSize = 1 }, cancellationToken), cancellationToken),
        };
        var report = new HealthReport(components.Values.All(c => c.Status == "ok"), components);
        Volatile.Write(ref _last, report);
        Volatile.Write(ref _lastAt, time.GetTimestamp());
        return report;
    }

    /// <summary>
    /// The last report's verdict without waiting (for the Consul TTL check); starts a new check in the background when
    /// the last one is older than a few seconds. Before any check: whether start-up has finished.
    /// </summary>
    public bool IsHealthyNow()
    {
        var last = Volatile.Read(ref _last);
        if ((last is null || time.GetElapsedTime(Volatile.Read(ref _lastAt)) > Freshness) && Interlocked.Exchange(ref _refreshing, 1) == 0)
        {
            _ = RefreshAsync();
        }

        return last?.Healthy ?? readiness.Started;
    }

    private async Task RefreshAsync()
    {
        try
        {
            await CheckAsync(CancellationToken.None);
        }
        finally
        {
            Volatile.Write(ref _refreshing, 0);
        }
    }
}

/// <summary>The gateway's health as an ASP.NET Core health check, which the gRPC health service reports.</summary>
public sealed class GatewayHealthCheck(GatewayHealth health) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var report = await health.CheckAsync(cancellationToken);
        if (report.Healthy)
        {
            return HealthCheckResult.Healthy("All components ok.");
        }

        var failing = report.Components.Where(c => c.Value.Status != "ok").Select(c => $"{c.Key}: {c.Value.Status}{(c.Value.Error is null ? "" : " (" + c.Value.Error + ")")}");
        return HealthCheckResult.Unhealthy(string.Join("; ", failing));
    }
}

using System.Diagnostics;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway;

/// <summary>One component's health: ok or failing, how long the probe took, and why it failed.</summary>
public sealed record ComponentHealth(string Status, double Milliseconds, string? Error = null);

/// <summary>
/// <c>/healthz</c> for operators: whether the gateway has started, the cluster answers (a grain call that reads
/// persisted state) and the run store answers, each with its latency. 200 when all are ok, 503 otherwise.
/// </summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/healthz", CheckAsync).WithTags("Health").WithSummary("Component health for operators: cluster, grain storage, run store.");
        return endpoints;
    }

    private static async Task<IResult> CheckAsync(Observability.GatewayHealth health, CancellationToken cancellationToken)
    {
        var report = await health.CheckAsync(cancellationToken);

        // /healthz needs no credentials; a failure's message (hosts, ports, database names) is for admins only.
        var components = Security.RequestPrincipal.Current is { Admin: true }
            ? report.Components
            : report.Components.ToDictionary(c => c.Key, c => c.Value with { Error = c.Value.Error is null ? null : "hidden: ask as an admin for the detail" });
        return Results.Json(new { status = report.Healthy ? "ok" : "degraded", components }, statusCode: report.Healthy ? 200 : 503);
    }
}

/// <summary>One bounded health probe, shared by readiness and <c>/healthz</c>.</summary>
public static class HealthProbe
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    public static async Task<ComponentHealth> RunAsync(Func<Task> probe, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await probe().WaitAsync(ProbeTimeout, cancellationToken);
            return new ComponentHealth("ok", Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new ComponentHealth("failing", Stopwatch.GetElapsedTime(started).TotalMilliseconds, e.Message);
        }
    }
}

using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Grains.Agents;

/// <summary>
/// Detects this silo's hardware once and reports it, with a heartbeat, to its agent grain: with the replicas loaded here
/// and the model memory budget. After each report it reads the other agents' replica counts into the silo's
/// <see cref="Placement.SiloLoadView"/>, the load the placement director spreads by.
/// </summary>
public sealed partial class AgentPublisher(
    IGrainFactory grains,
    ILocalSiloDetails silo,
    HardwareDetector detector,
    Placement.ModelMemoryBudget memory,
    Placement.SiloLoadView loads,
    IOptions<AgentOptions> options,
    TimeProvider time,
    ILogger<AgentPublisher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var id = silo.SiloAddress.ToString();
        var started = time.GetUtcNow();
        var agent = detector.Detect(id, started) with { StartedAt = started };
        LogDetected(logger, id, agent.CpuCores, agent.Gpus.Count, agent.GpuSource, string.Join(",", agent.ExecutionProviders));
        while (!stoppingToken.IsCancellationRequested)
        {
            var changed = memory.NextChange;
            try
            {
                var loaded = memory.Snapshot();
                await grains.GetGrain<IAgentGrain>(id).ReportAsync(agent with
                {
                    HeartbeatAt = time.GetUtcNow(),
                    LoadedModels = loaded.Select(r => r.Replica).ToArray(),
                    LoadedReplicas = loaded,
                    ModelMemoryBudgetBytes = memory.BudgetBytes,
                    ModelMemoryUsedBytes = memory.UsedBytes,
                    ModelEvictions = memory.Evictions,
                });
                await RefreshLoadsAsync();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogReportFailed(logger, e);
            }

            // The next heartbeat, or sooner when a replica loads or is unloaded, so the agent status is current.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            await Task.WhenAny(changed, Task.Delay(options.Value.HeartbeatInterval, time, wait.Token));
            await wait.CancelAsync();
        }
    }

    private async Task RefreshLoadsAsync()
    {
        var index = await grains.GetGrain<IAgentIndexGrain>(IAgentIndexGrain.DefaultKey).ListAsync();
        var counts = new List<KeyValuePair<string, int>>(index.Count);
        foreach (var (agentId, _) in index)
        {
            if (await grains.GetGrain<IAgentGrain>(agentId).GetAsync() is { } other)
            {
                counts.Add(KeyValuePair.Create(agentId, other.LoadedReplicas.Count));
            }
        }

        loads.Update(counts);
    }

    [LoggerMessage(EventId = 1501, Level = LogLevel.Information, Message = "Agent {Agent}: {Cores} CPU cores, {Gpus} GPUs ({Source}), execution providers {Providers}")]
    private static partial void LogDetected(ILogger logger, string agent, int cores, int gpus, string source, string providers);

    [LoggerMessage(EventId = 1502, Level = LogLevel.Warning, Message = "Reporting the agent record failed; will retry")]
    private static partial void LogReportFailed(ILogger logger, Exception exception);
}

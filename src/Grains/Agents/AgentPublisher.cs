using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Grains.Agents;

/// <summary>Detects this silo's hardware once and reports it, with a heartbeat, to its agent grain.</summary>
public sealed partial class AgentPublisher(
    IGrainFactory grains,
    ILocalSiloDetails silo,
    HardwareDetector detector,
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
        using var timer = new PeriodicTimer(options.Value.HeartbeatInterval, time);
        do
        {
            try
            {
                await grains.GetGrain<IAgentGrain>(id).ReportAsync(agent with { HeartbeatAt = time.GetUtcNow() });
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogReportFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(EventId = 1501, Level = LogLevel.Information, Message = "Agent {Agent}: {Cores} CPU cores, {Gpus} GPUs ({Source}), execution providers {Providers}")]
    private static partial void LogDetected(ILogger logger, string agent, int cores, int gpus, string source, string providers);

    [LoggerMessage(EventId = 1502, Level = LogLevel.Warning, Message = "Reporting the agent record failed; will retry")]
    private static partial void LogReportFailed(ILogger logger, Exception exception);
}

using Carml.Orleans.Core;

namespace Carml.Orleans.Gateway.Routing;

/// <summary>Drains the <see cref="RunRecorder"/> into the run store for the life of the gateway.</summary>
public sealed class RunRecorderService(RunRecorder recorder) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await recorder.WriteAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: records still queued are dropped with the process, as the recording contract allows.
        }
    }
}

using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Uploads;

/// <summary>Purges uploads that expired before completing, every <see cref="UploadOptions.PurgeInterval"/>.</summary>
public sealed partial class UploadPurgeService(
    IGrainFactory grains,
    IOptions<UploadOptions> options,
    [FromKeyedServices(UploadOptions.ClockKey)] TimeProvider time,
    ILogger<UploadPurgeService> logger) : BackgroundService
{
    private const int Batch = 100;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PurgeInterval, time);
        do
        {
            try
            {
                var purged = await PurgeDueAsync(stoppingToken);
                if (purged > 0)
                {
                    LogPurged(logger, purged);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogPurgeFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>Expires every upload due now; returns how many were purged.</summary>
    public async Task<int> PurgeDueAsync(CancellationToken cancellationToken)
    {
        var index = grains.GetGrain<IUploadIndexGrain>(IUploadIndexGrain.DefaultKey);
        var purged = 0;
        while (true)
        {
            var due = await index.DueAsync(time.GetUtcNow(), Batch);
            var progress = 0;
            foreach (var id in due)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (await grains.GetGrain<IUploadGrain>(id).ExpireIfDueAsync())
                {
                    purged++;
                    progress++;
                }
                else
                {
                    await index.ForgetAsync(id);
                    progress++;
                }
            }

            if (due.Count < Batch || progress == 0)
            {
                return purged;
            }
        }
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "Purged {Count} expired uploads")]
    private static partial void LogPurged(ILogger logger, int count);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "Purging expired uploads failed; will retry")]
    private static partial void LogPurgeFailed(ILogger logger, Exception exception);
}

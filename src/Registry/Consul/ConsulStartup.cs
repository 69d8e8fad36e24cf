using Microsoft.Extensions.Logging;

namespace Carml.Orleans.Registry.Consul;

/// <summary>Start-up reachability: keep trying for a bounded time, then fail with a message that says what to fix.</summary>
internal static partial class ConsulStartup
{
    public static async Task RetryUntilReachableAsync(
        ConsulClient consul,
        TimeSpan timeout,
        string what,
        Func<CancellationToken, Task> action,
        ILogger logger,
        TimeProvider time,
        CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await action(cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (ConsulUnavailableException e)
            {
                var elapsed = time.GetElapsedTime(started);
                if (elapsed >= timeout)
                {
                    throw new ConsulUnavailableException(
                        $"Cannot start: {what} in Consul at {consul.Address} was not reachable within {timeout.TotalSeconds:0.#} s " +
                        $"(Carml:Consul:Clustering:StartupTimeout). Start Consul or point Carml:Consul:Address / {ConsulOptions.AddressVariable} at it. Last error: {e.Message}",
                        e);
                }

                LogWaiting(logger, what, consul.Address, attempt);
                var delay = TimeSpan.FromSeconds(Math.Min(2, timeout.TotalSeconds - elapsed.TotalSeconds));
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "Waiting for {What} in Consul at {Address} (attempt {Attempt})")]
    private static partial void LogWaiting(ILogger logger, string what, Uri address, int attempt);
}

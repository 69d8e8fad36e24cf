using System.Text.Json;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Logging;

namespace Carml.Orleans.Registry.Catalog;

/// <summary>
/// Keeps one service in Consul's catalog: registers it with a TTL check, marks the check passing (or critical while the
/// process reports itself unhealthy) three times per TTL, registers again when the agent has forgotten it (a restarted
/// agent answers "unknown check"), and on stop fails the check and deregisters. Also publishes the service under
/// <c>agents/&lt;name&gt;/&lt;id&gt;</c> in the registry with a TTL, so it can be browsed in the Consul UI's KV view.
/// Consul being unreachable is logged and retried; it never stops the process.
/// </summary>
public sealed partial class ServiceCatalogRegistration(
    ConsulClient consul,
    IRegistry? registry,
    ServiceCatalogOptions options,
    Func<AgentServiceRegistration> describe,
    Func<bool> isHealthy,
    ILogger logger,
    TimeProvider time) : IAsyncDisposable
{
    private CancellationTokenSource? _stopping;
    private Task? _loop;
    private AgentServiceRegistration? _registration;

    /// <summary>The registration as last sent; null before start.</summary>
    public AgentServiceRegistration? Registration => _registration;

    public static string CheckIdOf(string serviceId) => "service:" + serviceId;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _registration = describe();
        _stopping = new CancellationTokenSource();
        _loop = RunAsync(_registration, _stopping.Token);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopping is null || _registration is null)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        _stopping.Dispose();
        _stopping = null;
        var registration = _registration;
        try
        {
            await consul.AgentCheckUpdateAsync(CheckIdOf(registration.ID), CheckStatuses.Critical, "shutting down", cancellationToken).ConfigureAwait(false);
            await consul.AgentServiceDeregisterAsync(registration.ID, cancellationToken).ConfigureAwait(false);
            if (registry is not null && options.PublishToRegistry)
            {
                await registry.DeleteAsync(AgentKey(registration), cancellationToken).ConfigureAwait(false);
            }

            LogDeregistered(logger, registration.Name, registration.ID);
        }
        catch (Exception e) when (e is ConsulException or HttpRequestException or OperationCanceledException)
        {
            // The TTL check goes critical and DeregisterCriticalServiceAfter removes the service anyway.
            LogDeregisterFailed(logger, e, registration.ID);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);

    internal static string AgentKey(AgentServiceRegistration registration) => $"agents/{registration.Name}/{registration.ID}";

    private async Task RunAsync(AgentServiceRegistration registration, CancellationToken stopping)
    {
        var registered = false;
        var interval = options.CheckTtl / 3;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                var healthy = isHealthy();
                if (registered)
                {
                    var known = await consul.AgentCheckUpdateAsync(
                        CheckIdOf(registration.ID),
                        healthy ? CheckStatuses.Passing : CheckStatuses.Critical,
                        healthy ? null : "not serving",
                        stopping).ConfigureAwait(false);
                    if (!known)
                    {
                        LogAgentForgot(logger, registration.ID);
                        registered = false;
                    }
                }

                if (!registered)
                {
                    await consul.AgentServiceRegisterAsync(registration with { Check = Check(registration, healthy) }, stopping).ConfigureAwait(false);
                    registered = true;
                    LogRegistered(logger, registration.Name, registration.ID, registration.Address, registration.Port);
                }

                if (registry is not null && options.PublishToRegistry)
                {
                    await registry.PutAsync(AgentKey(registration), JsonSerializer.SerializeToUtf8Bytes(registration with { Check = null }), new RegistryWriteOptions { Ttl = options.CheckTtl }, stopping).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (ConsulAclException e)
            {
                // A token problem does not fix itself: say so once and stop trying.
                LogAclRefused(logger, e, registration.ID);
                return;
            }
            catch (Exception e) when (e is ConsulException or HttpRequestException)
            {
                LogUpdateFailed(logger, e, registration.ID);
            }

            try
            {
                await Task.Delay(interval, time, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private AgentServiceCheck Check(AgentServiceRegistration registration, bool healthy) => new()
    {
        CheckID = CheckIdOf(registration.ID),
        Name = $"{registration.Name} TTL",
        TTL = ConsulDuration.Format(options.CheckTtl),
        Status = healthy ? CheckStatuses.Passing : CheckStatuses.Critical,
        DeregisterCriticalServiceAfter = ConsulDuration.Format(options.DeregisterCriticalServiceAfter),
        Notes = "Marked passing by the process itself while it serves; critical when it stops.",
    };

    [LoggerMessage(EventId = 5301, Level = LogLevel.Information, Message = "Registered {Name} as {ServiceId} ({Address}:{Port}) in the Consul catalog")]
    private static partial void LogRegistered(ILogger logger, string name, string serviceId, string? address, int port);

    [LoggerMessage(EventId = 5302, Level = LogLevel.Warning, Message = "The Consul agent no longer knows {ServiceId} (restarted?); registering again")]
    private static partial void LogAgentForgot(ILogger logger, string serviceId);

    [LoggerMessage(EventId = 5303, Level = LogLevel.Warning, Message = "Could not update {ServiceId} in the Consul catalog; will retry")]
    private static partial void LogUpdateFailed(ILogger logger, Exception exception, string serviceId);

    [LoggerMessage(EventId = 5304, Level = LogLevel.Information, Message = "Deregistered {Name} {ServiceId} from the Consul catalog")]
    private static partial void LogDeregistered(ILogger logger, string name, string serviceId);

    [LoggerMessage(EventId = 5305, Level = LogLevel.Warning, Message = "Could not deregister {ServiceId}; its TTL check will go critical and Consul will remove it")]
    private static partial void LogDeregisterFailed(ILogger logger, Exception exception, string serviceId);

    [LoggerMessage(EventId = 5306, Level = LogLevel.Error, Message = "Consul refused the ACL token while registering {ServiceId}; catalog registration stopped")]
    private static partial void LogAclRefused(ILogger logger, Exception exception, string serviceId);
}

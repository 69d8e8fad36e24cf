using System.Threading.RateLimiting;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Security;

/// <summary>
/// Per-caller limits with <see cref="System.Threading.RateLimiting"/>: a token bucket of requests per window and a
/// cap on requests in flight, partitioned by API key, else user, else client address. Over a limit: 429 with
/// <c>Retry-After</c>, or gRPC RESOURCE_EXHAUSTED with <c>retry-after</c> metadata.
/// </summary>
public sealed class CallerRateLimiter : IAsyncDisposable
{
    private readonly PartitionedRateLimiter<HttpContext>? _limiter;

    public CallerRateLimiter(IOptions<LimitOptions> options)
    {
        var limits = options.Value;
        var parts = new List<PartitionedRateLimiter<HttpContext>>();
        // In-flight first: a request refused for concurrency does not spend a token of the rate.
        if (limits.ConcurrentRequests > 0)
        {
            parts.Add(PartitionedRateLimiter.Create<HttpContext, string>(context => RateLimitPartition.GetConcurrencyLimiter(
                PartitionOf(context), _ => new ConcurrencyLimiterOptions { PermitLimit = limits.ConcurrentRequests, QueueLimit = 0 })));
        }

        if (limits.RequestsPerWindow > 0)
        {
            parts.Add(PartitionedRateLimiter.Create<HttpContext, string>(context => RateLimitPartition.GetTokenBucketLimiter(
                PartitionOf(context), _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = limits.RequestsPerWindow,
                    TokensPerPeriod = limits.RequestsPerWindow,
                    ReplenishmentPeriod = limits.Window,
                    QueueLimit = 0,
                    AutoReplenishment = true,
                })));
        }

        _limiter = parts.Count switch
        {
            0 => null,
            1 => parts[0],
            _ => PartitionedRateLimiter.CreateChained(parts.ToArray()),
        };
    }

    public async Task RunAsync(HttpContext context, RequestDelegate next)
    {
        if (_limiter is null)
        {
            await next(context);
            return;
        }

        using var lease = _limiter.AttemptAcquire(context);
        if (!lease.IsAcquired)
        {
            var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
            await SecurityResponses.RefuseAsync(context, ModelErrorKind.ResourceExhausted,
                $"Too many requests from this caller (Carml:Limits); retry after {Math.Max(1, Math.Ceiling(retryAfter.TotalSeconds))} s.", retryAfter);
            return;
        }

        await next(context);
    }

    private static string PartitionOf(HttpContext context) =>
        context.Items[typeof(CarmlPrincipal)] is CarmlPrincipal { IsAnonymous: false } principal
            ? principal.Partition
            : "ip:" + context.Connection.RemoteIpAddress;

    public ValueTask DisposeAsync() => _limiter?.DisposeAsync() ?? ValueTask.CompletedTask;
}

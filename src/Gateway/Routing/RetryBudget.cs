namespace Carml.Orleans.Gateway.Routing;

/// <summary>
/// How much room one request has for retries: a number of tries and a point in time, the request's own deadline (its
/// KServe <c>timeout</c>, which the gRPC handlers set from the gRPC deadline) or else <see cref="FailoverOptions.MaxRetryWindow"/>
/// after it arrived. Timestamps are <see cref="TimeProvider.GetTimestamp"/> values.
/// </summary>
public readonly record struct RetryBudget(long Started, long Deadline, bool HasCallerDeadline, int MaxAttempts, long TimestampFrequency)
{
    public static RetryBudget Start(long requestTimeoutMicroseconds, FailoverOptions options, TimeProvider time)
    {
        var now = time.GetTimestamp();
        var frequency = time.TimestampFrequency;
        var window = Ticks(options.MaxRetryWindow.Ticks / (double)TimeSpan.TicksPerSecond, frequency);
        return requestTimeoutMicroseconds > 0
            ? new RetryBudget(now, Saturate(now, Ticks(requestTimeoutMicroseconds / 1e6, frequency)), true, options.MaxAttempts, frequency)
            : new RetryBudget(now, Saturate(now, window), false, options.MaxAttempts, frequency);
    }

    /// <summary>Whether the caller's deadline (not just the retry window) has passed.</summary>
    public bool DeadlinePassed(long now) => HasCallerDeadline && now >= Deadline;

    /// <summary>Time left before the deadline or the end of the retry window (zero when past).</summary>
    public TimeSpan Remaining(long now) => now >= Deadline ? TimeSpan.Zero : TimeSpan.FromSeconds((Deadline - now) / (double)TimestampFrequency);

    /// <summary>Microseconds left for the request's own timeout on a retry (at least 1, so it never reads as "no limit").</summary>
    public long RemainingMicroseconds(long now) => Math.Max(1, (long)(Remaining(now).Ticks / TimeSpan.TicksPerMicrosecond));

    /// <summary>Whether another try may start after <paramref name="attemptsMade"/> tries and a pause of <paramref name="delay"/>.</summary>
    public bool AllowsRetry(int attemptsMade, TimeSpan delay, long now) =>
        attemptsMade < MaxAttempts && now + Ticks(delay.Ticks / (double)TimeSpan.TicksPerSecond, TimestampFrequency) < Deadline;

    /// <summary>
    /// The pause before try number <paramref name="attemptsMade"/> + 1: <see cref="FailoverOptions.BaseBackoff"/> doubled
    /// per earlier retry, capped at <see cref="FailoverOptions.MaxBackoff"/>, scaled by a jitter in [0.5, 1).
    /// </summary>
    public static TimeSpan Backoff(int attemptsMade, FailoverOptions options, double jitter)
    {
        var exponent = Math.Clamp(attemptsMade - 1, 0, 16);
        var ticks = Math.Min(options.BaseBackoff.Ticks * (double)(1L << exponent), options.MaxBackoff.Ticks);
        return TimeSpan.FromTicks((long)(ticks * (0.5 + (Math.Clamp(jitter, 0, 1) / 2))));
    }

    private static long Ticks(double seconds, long frequency) => (long)Math.Min(seconds * frequency, long.MaxValue / 4.0);

    private static long Saturate(long now, long span) => span >= long.MaxValue - now ? long.MaxValue : now + span;
}

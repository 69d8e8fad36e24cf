using Carml.Orleans.Gateway.Routing;
using Microsoft.Extensions.Time.Testing;

namespace Carml.Orleans.Tests.Routing;

public sealed class RetryBudgetTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly FailoverOptions _options = new()
    {
        MaxAttempts = 4,
        MaxRetryWindow = TimeSpan.FromSeconds(10),
        BaseBackoff = TimeSpan.FromMilliseconds(20),
        MaxBackoff = TimeSpan.FromMilliseconds(100),
    };

    [Fact]
    public void A_request_timeout_is_the_deadline()
    {
        var budget = RetryBudget.Start(2_000_000, _options, _time);

        Assert.True(budget.HasCallerDeadline);
        Assert.Equal(TimeSpan.FromSeconds(2), budget.Remaining(_time.GetTimestamp()));
        _time.Advance(TimeSpan.FromMilliseconds(1500));
        Assert.False(budget.DeadlinePassed(_time.GetTimestamp()));
        Assert.True(budget.AllowsRetry(1, TimeSpan.FromMilliseconds(100), _time.GetTimestamp()));
        Assert.False(budget.AllowsRetry(1, TimeSpan.FromMilliseconds(500), _time.GetTimestamp()));

        _time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.True(budget.DeadlinePassed(_time.GetTimestamp()));
        Assert.Equal(TimeSpan.Zero, budget.Remaining(_time.GetTimestamp()));
        Assert.False(budget.AllowsRetry(1, TimeSpan.Zero, _time.GetTimestamp()));
    }

    [Fact]
    public void Without_a_deadline_the_retry_window_bounds_retries_but_no_deadline_is_reported_passed()
    {
        var budget = RetryBudget.Start(0, _options, _time);

        Assert.False(budget.HasCallerDeadline);
        _time.Advance(TimeSpan.FromSeconds(10));

        Assert.False(budget.AllowsRetry(1, TimeSpan.Zero, _time.GetTimestamp()));
        Assert.False(budget.DeadlinePassed(_time.GetTimestamp()));
    }

    [Fact]
    public void The_number_of_tries_bounds_retries()
    {
        var budget = RetryBudget.Start(0, _options, _time);
        var now = _time.GetTimestamp();

        Assert.True(budget.AllowsRetry(3, TimeSpan.Zero, now));
        Assert.False(budget.AllowsRetry(4, TimeSpan.Zero, now));
    }

    [Fact]
    public void The_remaining_timeout_handed_to_a_retry_never_reads_as_no_limit()
    {
        var budget = RetryBudget.Start(1_000, _options, _time);
        Assert.Equal(1_000, budget.RemainingMicroseconds(_time.GetTimestamp()));

        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(1, budget.RemainingMicroseconds(_time.GetTimestamp()));
    }

    [Theory]
    [InlineData(1, 0.0, 10)]
    [InlineData(1, 1.0, 20)]
    [InlineData(2, 1.0, 40)]
    [InlineData(3, 1.0, 80)]
    [InlineData(4, 1.0, 100)]
    [InlineData(9, 0.0, 50)]
    public void Back_off_doubles_per_retry_is_capped_and_jittered_between_half_and_full(int attemptsMade, double jitter, int expectedMs)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), RetryBudget.Backoff(attemptsMade, _options, jitter));
    }
}

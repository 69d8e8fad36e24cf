using Carml.Orleans.Gateway.Security;
using Microsoft.Extensions.Time.Testing;

namespace Carml.Orleans.Tests.Security;

public sealed class JwtPrincipalCacheTests
{
    private static readonly CarmlPrincipal Alice = new("alice", "a", [], Admin: false);

    [Fact]
    public void A_token_is_known_until_it_expires()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(1));
        var cache = new JwtPrincipalCache(time);

        cache.Add("token", Alice, time.GetUtcNow().AddSeconds(60));
        var before = cache.TryGet("token", out var principal);
        time.Advance(TimeSpan.FromSeconds(61));

        Assert.True(before);
        Assert.Equal(Alice, principal);
        Assert.False(cache.TryGet("token", out _));
    }

    [Fact]
    public void A_long_lived_token_is_checked_again_after_five_minutes()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(1));
        var cache = new JwtPrincipalCache(time);

        cache.Add("token", Alice, time.GetUtcNow().AddDays(30));
        time.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1));

        Assert.False(cache.TryGet("token", out _));
    }

    [Fact]
    public void Tokens_without_an_expiry_and_other_tokens_are_not_known()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(1));
        var cache = new JwtPrincipalCache(time);

        cache.Add("no-expiry", Alice, null);
        cache.Add("token", Alice, time.GetUtcNow().AddMinutes(1));

        Assert.False(cache.TryGet("no-expiry", out _));
        Assert.False(cache.TryGet("token-with-a-changed-byte", out _));
    }
}

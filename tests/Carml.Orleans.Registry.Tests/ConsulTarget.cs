using System.Text;
using Carml.Orleans.ConsulEmulator;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Carml.Orleans.Registry.Tests;

/// <summary>
/// What the conformance tests run against: a real Consul agent when <c>CONSUL_HTTP_ADDR</c> is set (token from
/// <c>CONSUL_HTTP_TOKEN</c>), otherwise the in-process emulator on a free port with a clock the tests move. Every test
/// works under its own key prefix, so runs against a shared agent do not collide.
/// </summary>
public sealed class ConsulTarget : IAsyncLifetime
{
    private ConsulEmulatorServer? _emulator;

    public bool IsRealAgent { get; } = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(ConsulOptions.AddressVariable));

    /// <summary>The emulator's clock (TTL sessions and checks); null against a real agent.</summary>
    public FakeTimeProvider? Clock { get; private set; }

    public ConsulEmulatorServer Emulator => _emulator ?? throw new InvalidOperationException("Running against a real Consul agent.");

    public Uri Address { get; private set; } = new("http://127.0.0.1:8500/");

    public async ValueTask InitializeAsync()
    {
        if (IsRealAgent)
        {
            var options = new ConsulOptions();
            options.ApplyEnvironment();
            Address = options.BaseAddress;
            return;
        }

        Clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        _emulator = await ConsulEmulatorServer.StartAsync(new ConsulEmulatorOptions { Time = Clock });
        Address = _emulator.Address;
    }

    public async ValueTask DisposeAsync()
    {
        if (_emulator is not null)
        {
            await _emulator.DisposeAsync();
        }
    }

    public ConsulClient CreateClient(Action<ConsulOptions>? configure = null, ILogger<ConsulClient>? logger = null) =>
        CreateClient(Address, configure, logger);

    public static ConsulClient CreateClient(Uri address, Action<ConsulOptions>? configure = null, ILogger<ConsulClient>? logger = null)
    {
        var options = new ConsulOptions { Address = address.ToString(), RetryDelay = TimeSpan.FromMilliseconds(20), MaxRetries = 2, BlockingWait = TimeSpan.FromSeconds(5), MinimumWatchInterval = TimeSpan.FromMilliseconds(10) };
        configure?.Invoke(options);
        options.ApplyEnvironment();
        return new ConsulClient(new HttpClient(), Options.Create(options), logger ?? NullLogger<ConsulClient>.Instance);
    }

    /// <summary>A key prefix of this test's own.</summary>
    public static string NewPrefix() => $"carml-test/{Guid.NewGuid():N}/";

    /// <summary>Lets <paramref name="duration"/> pass: moves the emulator's clock, or waits in real time on a real agent.</summary>
    public Task PassAsync(TimeSpan duration)
    {
        if (Clock is not null)
        {
            Clock.Advance(duration);
            return Task.CompletedTask;
        }

        return Task.Delay(duration, TestContext.Current.CancellationToken);
    }

    /// <summary>Skips a test that needs the emulator's test controls (stopping the agent, forgetting registrations).</summary>
    public void RequireEmulator(string why)
    {
        if (IsRealAgent)
        {
            Assert.Skip($"Needs the emulator: {why}.");
        }
    }

    public static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    public static string Text(byte[]? bytes) => bytes is null ? string.Empty : Encoding.UTF8.GetString(bytes);
}

/// <summary>Waits for a condition with a deadline and a message that says what did not happen.</summary>
public static class Eventually
{
    public static async Task<T> WaitAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        T last;
        while (true)
        {
            last = await probe();
            if (done(last))
            {
                return last;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Within {timeout.TotalSeconds:0.#} s: {what} (last seen: {last}).");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), TestContext.Current.CancellationToken);
        }
    }
}

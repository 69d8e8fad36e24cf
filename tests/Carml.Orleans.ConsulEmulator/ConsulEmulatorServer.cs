using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Carml.Orleans.ConsulEmulator;

public sealed class ConsulEmulatorOptions
{
    /// <summary>Port on 127.0.0.1; 0 lets the OS pick a free one.</summary>
    public int Port { get; set; }

    /// <summary>When set, every <c>/v1</c> request must carry this token, or gets a 403 as from Consul with ACLs on.</summary>
    public string? AclToken { get; set; }

    /// <summary>The clock of TTLs (sessions, checks, lock-delay); tests pass a fake one to move time.</summary>
    public TimeProvider? Time { get; set; }
}

/// <summary>Switches the test controls flip.</summary>
public sealed class ConsulEmulatorFaults
{
    private volatile bool _unreachable;

    /// <summary>While set, every <c>/v1</c> connection is dropped without an answer.</summary>
    public bool Unreachable
    {
        get => _unreachable;
        set => _unreachable = value;
    }
}

/// <summary>
/// The Consul API emulator on Kestrel, on 127.0.0.1. Test support, not a product feature. <see cref="StopAsync"/> takes
/// it off the network while keeping its state, and <see cref="StartAgainAsync"/> brings it back on the same port, so a
/// test can make Consul unreachable and then return.
/// </summary>
public sealed class ConsulEmulatorServer : IAsyncDisposable
{
    private readonly ConsulEmulatorOptions _options;
    private WebApplication? _app;

    private ConsulEmulatorServer(ConsulEmulatorOptions options, ConsulEmulatorState state)
    {
        _options = options;
        State = state;
    }

    public ConsulEmulatorState State { get; }

    public ConsulEmulatorFaults Faults { get; } = new();

    public Uri Address { get; private set; } = new("http://127.0.0.1/");

    public int Port { get; private set; }

    public bool Running => _app is not null;

    public static async Task<ConsulEmulatorServer> StartAsync(ConsulEmulatorOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ConsulEmulatorOptions();
        var server = new ConsulEmulatorServer(options, new ConsulEmulatorState(options.Time));
        await server.ListenAsync(options.Port, cancellationToken);
        return server;
    }

    /// <summary>Listens again on the same port with the same state (after <see cref="StopAsync"/>).</summary>
    public Task StartAgainAsync(CancellationToken cancellationToken = default) =>
        _app is not null ? Task.CompletedTask : ListenAsync(Port, cancellationToken);

    public async Task StopAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            // Blocking queries in flight are cut off after a second, as when an agent goes away.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await app.StopAsync(timeout.Token);
            await app.DisposeAsync();
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());

    private async Task ListenAsync(int port, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, port);
            kestrel.Limits.MaxRequestBodySize = null;
        });
        var app = builder.Build();
        app.MapConsulEmulator(State, _options, Faults);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Address = new Uri(address.TrimEnd('/') + "/");
        Port = Address.Port;
        _app = app;
    }
}

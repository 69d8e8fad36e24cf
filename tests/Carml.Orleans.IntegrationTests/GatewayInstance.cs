using Carml.Orleans.Gateway;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using KServeGrpc = Carml.Orleans.Gateway.KServe.Grpc.GRPCInferenceService;

namespace Carml.Orleans.Tests;

/// <summary>
/// A real gateway with its in-process silo, on loopback ports picked at run time, over a data directory the caller
/// owns (so a restart can reuse it). Clients are a real HttpClient and a real Grpc.Net.Client channel.
/// </summary>
public sealed class GatewayInstance : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private readonly WebApplication _app;

    private GatewayInstance(WebApplication app)
    {
        _app = app;
        var endpoints = app.Services.GetRequiredService<GatewayEndpoints>();
        Http = new HttpClient { BaseAddress = endpoints.Http, Timeout = TimeSpan.FromSeconds(60) };
        Channel = GrpcChannel.ForAddress(endpoints.Grpc, new GrpcChannelOptions { MaxReceiveMessageSize = 64 * 1024 * 1024, MaxSendMessageSize = 64 * 1024 * 1024 });
        Grpc = new KServeGrpc.GRPCInferenceServiceClient(Channel);
    }

    public HttpClient Http { get; }

    public GrpcChannel Channel { get; }

    public KServeGrpc.GRPCInferenceServiceClient Grpc { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<GatewayInstance> StartAsync(
        string dataDirectory, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        var configuration = new Dictionary<string, string?>
        {
            ["Carml:Gateway:HttpPort"] = "0",
            ["Carml:Gateway:GrpcPort"] = "0",
            ["Carml:Gateway:MetricsPort"] = "0",
            ["Carml:Silo:SiloPort"] = "0",
            ["Carml:Silo:GatewayPort"] = "0",
            ["Carml:Silo:DataDirectory"] = dataDirectory,
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Carml"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            configuration[key] = value;
        }

        var app = GatewayHost.Build([], builder =>
        {
            builder.Configuration.AddInMemoryCollection(configuration);
            services?.Invoke(builder.Services);
        });
        using var timeout = new CancellationTokenSource(StartTimeout);
        try
        {
            await app.StartAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            await app.DisposeAsync();
            throw new TimeoutException($"The gateway did not start within {StartTimeout.TotalSeconds} s.");
        }

        return new GatewayInstance(app);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        Channel.Dispose();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _app.StopAsync(timeout.Token);
        await _app.DisposeAsync();
    }
}

/// <summary>A temporary directory deleted with its owner.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "carml-test-" + Guid.NewGuid().ToString("N"));

    public TempDirectory() => Directory.CreateDirectory(Path);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(Path, recursive: true);
    }
}

/// <summary>One gateway shared by the tests of a collection; each test uses its own model names.</summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    private readonly TempDirectory _data = new();
    private GatewayInstance? _gateway;

    public GatewayInstance Gateway => _gateway ?? throw new InvalidOperationException("The gateway has not started.");

    public async ValueTask InitializeAsync() => _gateway = await GatewayInstance.StartAsync(_data.Path);

    public async ValueTask DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        _data.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>
{
    public const string Name = "gateway";
}

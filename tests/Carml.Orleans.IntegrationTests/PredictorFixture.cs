using Carml.Orleans.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Carml.Orleans.Tests;

/// <summary>
/// One gateway for the predictor tests: URLs on loopback allowed (the tests' image server), private networks not,
/// and a predictor clock the tests move by hand. The orientation model is registered on first use.
/// </summary>
public sealed class PredictorFixture : IAsyncLifetime
{
    public const string OrientationModelName = "ppocr-cls";
    public const string TabularModelName = "iris-no-images";

    private readonly TempDirectory _data = new();
    private readonly OrientationModelRegistration _orientation = new();
    private GatewayInstance? _gateway;

    public ManualClock Clock { get; } = new();

    public GatewayInstance Gateway => _gateway ?? throw new InvalidOperationException("The gateway has not started.");

    public async ValueTask InitializeAsync()
    {
        _gateway = await GatewayInstance.StartAsync(
            _data.Path,
            new Dictionary<string, string?>
            {
                ["Carml:SampleModel:Enabled"] = "false",
                ["Carml:Predictors:Urls:AllowLoopback"] = "true",
                ["Carml:Predictors:Urls:Timeout"] = "00:00:10",
                ["Carml:Predictors:IdleTimeout"] = "00:05:00",
                ["Carml:Predictors:MaxImagePixels"] = "4000000",
            },
            services => services.AddKeyedSingleton<TimeProvider>(PredictorOptions.ClockKey, Clock));
        await ModelRegistration.RegisterAsync(Gateway.Http, TestModels.IrisManifest(TabularModelName, "1"), TestModels.Iris.OnnxBytes);
    }

    /// <summary>Registers the PP-OCR classifier once; skips the calling test when npm is missing.</summary>
    public Task EnsureOrientationModelAsync() => _orientation.EnsureAsync(Gateway.Http);

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
public sealed class PredictorCollection : ICollectionFixture<PredictorFixture>
{
    public const string Name = "predictor";
}

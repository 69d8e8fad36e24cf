using Carml.Orleans.Core;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Onnx.Iris;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Standalone;

public sealed class SampleModelOptions
{
    public const string Section = "Carml:SampleModel";

    /// <summary>Register the Iris sample model on first start, so the README's examples work at once.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The Iris CSV the sample is trained on; relative paths are under the application directory.</summary>
    public string DataPath { get; set; } = Path.Combine("data", "iris.csv");
}

/// <summary>
/// Runs once the in-process silo is up and before Kestrel accepts requests: registers the sample model on first start,
/// loads every registered model (after a restart), then marks the server ready.
/// </summary>
public sealed partial class StandaloneStartup(
    IGrainFactory grains,
    ContentStore store,
    ModelRouter router,
    ServerReadiness readiness,
    GatewayEndpoints endpoints,
    IOptions<SampleModelOptions> sampleOptions,
    ILogger<StandaloneStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (sampleOptions.Value.Enabled)
        {
            await RegisterSampleAsync(cancellationToken);
        }

        await LoadRegisteredModelsAsync(cancellationToken);
        readiness.MarkStarted();
        LogListening(logger, endpoints.Http, endpoints.Grpc);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task RegisterSampleAsync(CancellationToken cancellationToken)
    {
        var versions = await router.GetVersionsAsync(IrisSampleModel.ModelName);
        if (versions.Count > 0)
        {
            return;
        }

        var path = Path.IsPathRooted(sampleOptions.Value.DataPath)
            ? sampleOptions.Value.DataPath
            : Path.Combine(AppContext.BaseDirectory, sampleOptions.Value.DataPath);
        var sample = IrisSampleModel.Build(path);
        var stored = await store.PutAsync(sample.OnnxBytes, cancellationToken);

        // The sample's manifest goes through the same reader as a user's, so it is validated the same way.
        var manifest = ManifestReader.Parse(sample.CreateManifest().ToYaml()) with
        {
            Source = new ModelSource { Path = IrisSampleModel.ModelFileName, Sha256 = stored.Sha256 },
        };
        await grains.GetGrain<IModelGrain>(manifest.Id.Key).RegisterAsync(manifest, new ModelArtifact(stored.Sha256, stored.SizeBytes));
        router.Invalidate(manifest.Name);
        LogSampleRegistered(logger, manifest.Name, manifest.Version, sample.TestAccuracy);
    }

    private async Task LoadRegisteredModelsAsync(CancellationToken cancellationToken)
    {
        await foreach (var id in grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).AllVersionsAsync())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var status = await grains.GetGrain<IModelGrain>(id.Key).EnsureLoadedAsync();
            LogModelState(logger, id.Name, id.Version, status.State, status.Reason);
        }
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Registered the sample model {Name} version {Version} (test accuracy {Accuracy:P1})")]
    private static partial void LogSampleRegistered(ILogger logger, string name, string version, double accuracy);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Model {Name} version {Version} is {State} {Reason}")]
    private static partial void LogModelState(ILogger logger, string name, string version, ModelState state, string? reason);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Carml.Orleans is ready: KServe v2 HTTP and REST on {Http}, KServe v2 gRPC on {Grpc}")]
    private static partial void LogListening(ILogger logger, Uri http, Uri grpc);
}

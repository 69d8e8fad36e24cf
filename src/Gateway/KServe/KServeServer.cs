using System.Reflection;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.KServe;

/// <summary>Model metadata as the KServe v2 protocol reports it.</summary>
public sealed record KServeModelMetadata(
    string Name,
    IReadOnlyList<string> Versions,
    string Platform,
    IReadOnlyList<TensorSpec> Inputs,
    IReadOnlyList<TensorSpec> Outputs);

/// <summary>What the HTTP and gRPC faces of the KServe v2 protocol share: health, server and model metadata.</summary>
public sealed class KServeServer(ModelRouter router, IGrainFactory grains, ServerReadiness readiness, IOptions<GatewayOptions> options)
{
    /// <summary>Triton's platform name for ONNX models, which clients and tools recognise.</summary>
    public const string OnnxPlatform = "onnxruntime_onnx";

    public static readonly IReadOnlyList<string> Extensions = ["binary_tensor_data"];

    public static string Version { get; } =
        typeof(KServeServer).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";

    public string Name => options.Value.ServerName;

    public Task<bool> IsReadyAsync(CancellationToken cancellationToken) => readiness.IsReadyAsync(cancellationToken);

    public async Task<KServeModelMetadata> GetModelMetadataAsync(string name, string? version)
    {
        var route = await router.ResolveAsync(name, version);
        var versions = await router.GetVersionsAsync(name);
        var manifest = route.Manifest;
        return new KServeModelMetadata(manifest.Name, versions, OnnxPlatform, manifest.Inputs, manifest.Outputs);
    }

    /// <summary>Whether the version can serve now. Throws NotFound for an unknown model or version.</summary>
    public async Task<bool> IsModelReadyAsync(string name, string? version)
    {
        var id = (await router.ResolveAsync(name, version)).Id; // the cached route: no catalog read per poll of "latest"
        var status = await grains.GetGrain<IModelGrain>(id.Key).GetStatusAsync()
            ?? throw ModelException.UnknownModel(id.Name, id.Version);
        return status.State == ModelState.Ready;
    }
}

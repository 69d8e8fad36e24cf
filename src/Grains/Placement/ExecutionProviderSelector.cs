using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains.Placement;

/// <summary>The provider a session should use, and why a GPU that was wanted is not used (null when nothing to warn about).</summary>
public sealed record ExecutionProviderChoice(string Provider, string? Warning)
{
    public bool UseCuda => Provider == ExecutionProviderSelector.Cuda;
}

/// <summary>
/// Chooses ONNX Runtime's execution provider for a replica: CUDA when the silo has a GPU, the manifest's
/// <c>deployment.device</c> allows it (<c>gpu</c> or <c>any</c>) and the runtime build offers
/// <c>CUDAExecutionProvider</c> (the Microsoft.ML.OnnxRuntime.Gpu package); otherwise CPU, with a warning when a GPU
/// was wanted and could have been used.
/// </summary>
public static class ExecutionProviderSelector
{
    public const string Cuda = "CUDAExecutionProvider";
    public const string Cpu = "CPUExecutionProvider";

    public static ExecutionProviderChoice Choose(IReadOnlyCollection<string> availableProviders, int gpuCount, DeviceRequirement device)
    {
        if (device == DeviceRequirement.Cpu)
        {
            return new ExecutionProviderChoice(Cpu, null);
        }

        var hasCuda = availableProviders.Contains(Cuda);
        if (gpuCount > 0 && hasCuda)
        {
            return new ExecutionProviderChoice(Cuda, null);
        }

        if (gpuCount > 0)
        {
            return new ExecutionProviderChoice(Cpu, $"the silo has {gpuCount} GPU(s) but this ONNX Runtime build has no {Cuda} (install the Microsoft.ML.OnnxRuntime.Gpu build, see docs/gpu.md); running on CPU");
        }

        return device == DeviceRequirement.Gpu
            ? new ExecutionProviderChoice(Cpu, "the model asks for a GPU but this silo has none; running on CPU")
            : new ExecutionProviderChoice(Cpu, null);
    }
}

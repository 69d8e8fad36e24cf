using Carml.Orleans.Grains.Placement;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Tests.Placement;

public sealed class ExecutionProviderSelectorTests
{
    private static readonly string[] CpuBuild = ["CPUExecutionProvider"];
    private static readonly string[] CudaBuild = ["CUDAExecutionProvider", "CPUExecutionProvider"];

    [Theory]
    [InlineData(DeviceRequirement.Gpu)]
    [InlineData(DeviceRequirement.Any)]
    public void Cuda_is_chosen_when_the_silo_has_a_gpu_and_the_runtime_has_cuda(DeviceRequirement device)
    {
        var choice = ExecutionProviderSelector.Choose(CudaBuild, gpuCount: 1, device);

        Assert.True(choice.UseCuda);
        Assert.Null(choice.Warning);
    }

    [Fact]
    public void A_cpu_model_runs_on_cpu_even_on_a_gpu_silo_with_cuda_and_without_a_warning()
    {
        var choice = ExecutionProviderSelector.Choose(CudaBuild, gpuCount: 2, DeviceRequirement.Cpu);

        Assert.Equal("CPUExecutionProvider", choice.Provider);
        Assert.Null(choice.Warning);
    }

    [Fact]
    public void A_gpu_silo_with_the_cpu_build_of_the_runtime_runs_on_cpu_and_warns_how_to_fix_it()
    {
        var choice = ExecutionProviderSelector.Choose(CpuBuild, gpuCount: 1, DeviceRequirement.Gpu);

        Assert.Equal("CPUExecutionProvider", choice.Provider);
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu", choice.Warning);
    }

    [Fact]
    public void A_gpu_model_on_a_silo_without_gpus_runs_on_cpu_with_a_warning()
    {
        var choice = ExecutionProviderSelector.Choose(CudaBuild, gpuCount: 0, DeviceRequirement.Gpu);

        Assert.False(choice.UseCuda);
        Assert.Equal("the model asks for a GPU but this silo has none; running on CPU", choice.Warning);
    }

    [Fact]
    public void An_any_model_on_a_cpu_silo_runs_on_cpu_quietly()
    {
        var choice = ExecutionProviderSelector.Choose(CpuBuild, gpuCount: 0, DeviceRequirement.Any);

        Assert.Equal("CPUExecutionProvider", choice.Provider);
        Assert.Null(choice.Warning);
    }
}

using Carml.Orleans.Grains.Agents;

namespace Carml.Orleans.Tests;

public sealed class GpuDetectionTests
{
    [Fact]
    public void Nvidia_smi_query_output_becomes_gpu_records()
    {
        const string output = """
            0, NVIDIA H100 80GB HBM3, 81559, 550.54.15, GPU-6a1b2c3d-0000-1111-2222-333344445555
            1, NVIDIA H100 80GB HBM3, 81559, 550.54.15, GPU-7a1b2c3d-0000-1111-2222-333344445555
            not a gpu line
            """;

        var gpus = HardwareDetector.ParseGpuQuery(output, "12.4");

        Assert.Equal(2, gpus.Count);
        Assert.Equal("NVIDIA H100 80GB HBM3", gpus[0].Name);
        Assert.Equal(81559L * 1024 * 1024, gpus[0].MemoryBytes);
        Assert.Equal("550.54.15", gpus[1].Driver);
        Assert.Equal("12.4", gpus[1].CudaVersion);
        Assert.Equal(1, gpus[1].Index);
    }

    [Theory]
    [InlineData("| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |", "12.4")]
    [InlineData("no banner here", null)]
    public void Cuda_version_is_read_from_the_banner(string banner, string? expected)
    {
        Assert.Equal(expected, HardwareDetector.ParseCudaVersion(banner));
    }
}

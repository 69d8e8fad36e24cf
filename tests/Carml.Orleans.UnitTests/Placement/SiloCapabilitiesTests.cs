using Microsoft.Extensions.Configuration;
using Carml.Orleans.Grains.Placement;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Tests.Placement;

public sealed class SiloCapabilitiesTests
{
    [Fact]
    public void Gpus_become_metadata_with_the_largest_gpu_memory_and_read_back_the_same()
    {
        var gpus = new[]
        {
            new GpuInfo(0, "A10", 24L * 1024 * 1024 * 1024, "550.54", "12.4", "GPU-0"),
            new GpuInfo(1, "A100", 80L * 1024 * 1024 * 1024, "550.54", "12.4", "GPU-1"),
        };

        var metadata = SiloCapabilities.From("s", gpus).ToMetadata();
        var read = SiloCapabilities.FromMetadata("s", metadata);

        Assert.Equal("gpu", metadata[SiloCapabilities.AcceleratorKey]);
        Assert.Equal("2", metadata[SiloCapabilities.GpuCountKey]);
        Assert.Equal((80L * 1024 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), metadata[SiloCapabilities.GpuMemoryKey]);
        Assert.Equal("12.4", metadata[SiloCapabilities.CudaKey]);
        Assert.Equal(new SiloCapabilities("s", 2, 80L * 1024 * 1024 * 1024, "12.4"), read);
    }

    [Fact]
    public void A_silo_without_gpus_advertises_cpu()
    {
        var metadata = SiloCapabilities.From("s", []).ToMetadata();

        Assert.Equal("cpu", metadata[SiloCapabilities.AcceleratorKey]);
        Assert.Equal("0", metadata[SiloCapabilities.GpuCountKey]);
        Assert.False(metadata.ContainsKey(SiloCapabilities.CudaKey));
    }

    [Fact]
    public void Missing_or_malformed_metadata_counts_as_a_cpu_silo()
    {
        Assert.False(SiloCapabilities.FromMetadata("s", new Dictionary<string, string>()).HasGpu);
        Assert.False(SiloCapabilities.FromMetadata("s", new Dictionary<string, string>
        {
            [SiloCapabilities.AcceleratorKey] = "gpu",
            [SiloCapabilities.GpuCountKey] = "many",
        }).HasGpu);
    }

    [Fact]
    public void Gpu_override_from_configuration_keys_is_what_the_silo_advertises()
    {
        // The same keys as the environment variables Carml__Agent__Gpus__0__Name / __MemoryMegabytes / __CudaVersion.
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Carml:Agent:Gpus:0:Name"] = "Override A100",
                ["Carml:Agent:Gpus:0:MemoryMegabytes"] = "40960",
                ["Carml:Agent:Gpus:0:CudaVersion"] = "12.4",
            })
            .Build();
        var options = Microsoft.Extensions.Configuration.ConfigurationBinder.Get<Grains.Agents.AgentOptions>(configuration.GetSection(Grains.Agents.AgentOptions.Section))!;

        var detector = new Grains.Agents.HardwareDetector(Microsoft.Extensions.Options.Options.Create(options));
        var metadata = Grains.Placement.SiloCapabilities.From("s", detector.Gpus).ToMetadata();

        Assert.Equal("gpu", metadata["carml.accelerator"]);
        Assert.Equal("1", metadata["carml.gpu.count"]);
        Assert.Equal((40960L * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), metadata["carml.gpu.memory_bytes"]);
        Assert.Equal("12.4", metadata["carml.gpu.cuda"]);
    }
}

using System.Globalization;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains.Placement;

/// <summary>
/// What one silo offers model replicas, as it advertises through Orleans silo metadata (<c>UseSiloMetadata</c>):
/// accelerator kind, GPU count, the largest GPU's memory and the CUDA version. A silo whose metadata has not arrived yet
/// (or that advertises none) counts as a CPU silo.
/// </summary>
public sealed record SiloCapabilities(string Silo, int GpuCount, long GpuMemoryBytes, string? CudaVersion)
{
    public const string AcceleratorKey = "carml.accelerator";
    public const string GpuCountKey = "carml.gpu.count";
    public const string GpuMemoryKey = "carml.gpu.memory_bytes";
    public const string CudaKey = "carml.gpu.cuda";

    public bool HasGpu => GpuCount > 0;

    public string Accelerator => HasGpu ? "gpu" : "cpu";

    public static SiloCapabilities Cpu(string silo) => new(silo, 0, 0, null);

    /// <summary>The silo's capabilities from its GPUs: count, the largest GPU's memory, the CUDA version any reports.</summary>
    public static SiloCapabilities From(string silo, IReadOnlyList<GpuInfo> gpus) => new(
        silo,
        gpus.Count,
        gpus.Count == 0 ? 0 : gpus.Max(g => g.MemoryBytes),
        gpus.Select(g => g.CudaVersion).FirstOrDefault(v => !string.IsNullOrEmpty(v)));

    /// <summary>The metadata entries a silo advertises.</summary>
    public IReadOnlyDictionary<string, string> ToMetadata()
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [AcceleratorKey] = Accelerator,
            [GpuCountKey] = GpuCount.ToString(CultureInfo.InvariantCulture),
            [GpuMemoryKey] = GpuMemoryBytes.ToString(CultureInfo.InvariantCulture),
        };
        if (CudaVersion is not null)
        {
            metadata[CudaKey] = CudaVersion;
        }

        return metadata;
    }

    /// <summary>Reads what <see cref="ToMetadata"/> wrote; missing or malformed entries count as no GPU.</summary>
    public static SiloCapabilities FromMetadata(string silo, IReadOnlyDictionary<string, string> metadata)
    {
        var isGpu = metadata.TryGetValue(AcceleratorKey, out var accelerator) && accelerator == "gpu";
        var count = isGpu && metadata.TryGetValue(GpuCountKey, out var c) && int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
        var memory = count > 0 && metadata.TryGetValue(GpuMemoryKey, out var m) && long.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out var b) ? b : 0;
        return new SiloCapabilities(silo, count, memory, count > 0 ? metadata.GetValueOrDefault(CudaKey) : null);
    }

    /// <summary>How an unschedulable reason names the silo, e.g. <c>silo 10.0.0.5:11111@1 gpu (2 × 16384 MiB)</c>.</summary>
    public string Describe() => HasGpu
        ? $"silo {Silo} gpu ({GpuCount} × {GpuMemoryBytes / (1024 * 1024)} MiB)"
        : $"silo {Silo} cpu";
}

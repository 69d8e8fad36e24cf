using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;

namespace Carml.Orleans.Grains.Agents;

/// <summary>Operator overrides for hosts whose detection is wrong (or, in tests, to advertise a GPU). Section <c>Carml:Agent</c>.</summary>
public sealed class AgentOptions
{
    public const string Section = "Carml:Agent";

    /// <summary>When set, these GPUs are advertised instead of what nvidia-smi reports.</summary>
    public List<ConfiguredGpu>? Gpus { get; set; }

    /// <summary>How often the agent record is refreshed.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);
}

public sealed class ConfiguredGpu
{
    public string Name { get; set; } = "configured GPU";

    public long MemoryMegabytes { get; set; }

    /// <summary>The CUDA version to advertise (nvidia-smi's banner would say it); optional.</summary>
    public string? CudaVersion { get; set; }
}

/// <summary>
/// Reads what a host has: OS, architecture, CPU model and cores, memory, GPUs (from
/// <c>nvidia-smi --query-gpu=… --format=csv</c> when it is installed, or from configuration), ONNX Runtime's version and
/// execution providers.
/// </summary>
public sealed class HardwareDetector
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(10);
    private readonly IOptions<AgentOptions> options;
    private readonly Lazy<(IReadOnlyList<GpuInfo> Gpus, string Source)> _gpus;

    public HardwareDetector(IOptions<AgentOptions> options)
    {
        this.options = options;
        _gpus = new Lazy<(IReadOnlyList<GpuInfo>, string)>(DetectGpus);
    }

    private const string GpuQuery = "--query-gpu=index,name,memory.total,driver_version,uuid --format=csv,noheader,nounits";

    public AgentInfo Detect(string agentId, DateTimeOffset now)
    {
        var (gpus, source) = _gpus.Value;
        return new AgentInfo
        {
            Id = agentId,
            HostName = Dns.GetHostName(),
            Addresses = Addresses(),
            Os = RuntimeInformation.OSDescription,
            Architecture = RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant(),
            CpuModel = CpuModel(),
            CpuCores = Environment.ProcessorCount,
            MemoryBytes = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
            Gpus = gpus,
            GpuSource = source,
            Frameworks = new Dictionary<string, string> { ["onnxruntime"] = OrtVersion() },
            ExecutionProviders = OrtEnv.Instance().GetAvailableProviders(),
            HeartbeatAt = now,
        };
    }

    /// <summary>The GPUs this host advertises; detected once (nvidia-smi) and reused by every caller.</summary>
    public IReadOnlyList<GpuInfo> Gpus => _gpus.Value.Gpus;

    private (IReadOnlyList<GpuInfo> Gpus, string Source) DetectGpus()
    {
        if (options.Value.Gpus is { } configured)
        {
            return (configured.Select((g, i) => new GpuInfo(i, g.Name, g.MemoryMegabytes * 1024 * 1024, null, g.CudaVersion, null)).ToArray(), "configured");
        }

        var query = Run("nvidia-smi", GpuQuery);
        if (query is null)
        {
            return ([], "none");
        }

        var cuda = ParseCudaVersion(Run("nvidia-smi", string.Empty) ?? string.Empty);
        var gpus = ParseGpuQuery(query, cuda);
        return (gpus, gpus.Count > 0 ? "detected" : "none");
    }

    /// <summary>Parses <c>nvidia-smi --query-gpu=index,name,memory.total,driver_version,uuid --format=csv,noheader,nounits</c>.</summary>
    public static IReadOnlyList<GpuInfo> ParseGpuQuery(string output, string? cudaVersion)
    {
        var gpus = new List<GpuInfo>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var cells = line.Split(',').Select(c => c.Trim()).ToArray();
            if (cells.Length < 5
                || !int.TryParse(cells[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                || !long.TryParse(cells[2], NumberStyles.None, CultureInfo.InvariantCulture, out var mebibytes))
            {
                continue;
            }

            gpus.Add(new GpuInfo(index, cells[1], mebibytes * 1024 * 1024, cells[3], cudaVersion, cells[4]));
        }

        return gpus;
    }

    /// <summary>The "CUDA Version: 12.4" of nvidia-smi's banner, if present.</summary>
    public static string? ParseCudaVersion(string banner)
    {
        const string marker = "CUDA Version:";
        var at = banner.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var rest = banner[(at + marker.Length)..].TrimStart();
        var end = 0;
        while (end < rest.Length && (char.IsDigit(rest[end]) || rest[end] == '.'))
        {
            end++;
        }

        return end > 0 ? rest[..end] : null;
    }

    private static string? CpuModel()
    {
        try
        {
            return File.Exists("/proc/cpuinfo")
                ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
                : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static IReadOnlyList<string> Addresses()
    {
        try
        {
            return Dns.GetHostAddresses(Dns.GetHostName()).Select(a => a.ToString()).Distinct().ToArray();
        }
        catch (System.Net.Sockets.SocketException)
        {
            return [];
        }
    }

    private static string OrtVersion() =>
        typeof(InferenceSession).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    private static string? Run(string program, string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true });
            if (process is null)
            {
                return null;
            }

            // Read while waiting, so a hung driver (nvidia-smi never exiting) cannot hold up the silo's start.
            var output = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(CommandTimeout))
            {
                process.Kill(entireProcessTree: true);
                return null;
            }

            return process.ExitCode == 0 ? output.GetAwaiter().GetResult() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // not installed
        }
    }
}

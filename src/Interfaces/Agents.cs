namespace Carml.Orleans.Interfaces;

/// <summary>One GPU as the agent sees it.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.GpuInfo")]
public sealed record GpuInfo(
    [property: Id(0)] int Index,
    [property: Id(1)] string Name,
    [property: Id(2)] long MemoryBytes,
    [property: Id(3)] string? Driver,
    [property: Id(4)] string? CudaVersion,
    [property: Id(5)] string? Uuid);

/// <summary>One replica loaded on a silo: its key (<c>name/version/index</c>), what it runs on, its memory and last use.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.LoadedReplica")]
public sealed record LoadedReplica(
    [property: Id(0)] string Replica,
    [property: Id(1)] string ExecutionProvider,
    [property: Id(2)] long MemoryBytes,
    [property: Id(3)] DateTimeOffset LastUsedAt,
    [property: Id(4)] int InFlight);

/// <summary>What a silo (agent) runs on and what it can run.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.AgentInfo")]
public sealed record AgentInfo
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required string HostName { get; init; }
    [Id(2)] public IReadOnlyList<string> Addresses { get; init; } = [];
    [Id(3)] public required string Os { get; init; }
    [Id(4)] public required string Architecture { get; init; }
    [Id(5)] public string? CpuModel { get; init; }
    [Id(6)] public int CpuCores { get; init; }
    [Id(7)] public long MemoryBytes { get; init; }
    [Id(8)] public IReadOnlyList<GpuInfo> Gpus { get; init; } = [];

    /// <summary>Where the GPU list came from: detected (nvidia-smi), configured (an operator override) or none.</summary>
    [Id(9)] public string GpuSource { get; init; } = "none";
    [Id(10)] public IReadOnlyDictionary<string, string> Frameworks { get; init; } = new Dictionary<string, string>();
    [Id(11)] public IReadOnlyList<string> ExecutionProviders { get; init; } = [];
    [Id(12)] public IReadOnlyList<string> LoadedModels { get; init; } = [];
    [Id(13)] public DateTimeOffset HeartbeatAt { get; init; }
    [Id(14)] public DateTimeOffset StartedAt { get; init; }

    /// <summary>The replicas loaded on this silo with the memory the budget charges them, most recently used first.</summary>
    [Id(15)] public IReadOnlyList<LoadedReplica> LoadedReplicas { get; init; } = [];

    /// <summary>The silo's memory budget for loaded models (<c>Carml:Silo:ModelMemoryBudgetBytes</c>); 0 = unlimited.</summary>
    [Id(16)] public long ModelMemoryBudgetBytes { get; init; }

    /// <summary>The memory charged to the loaded replicas.</summary>
    [Id(17)] public long ModelMemoryUsedBytes { get; init; }

    /// <summary>Replicas unloaded to make room since the silo started.</summary>
    [Id(18)] public long ModelEvictions { get; init; }

    public string Accelerator => Gpus.Count > 0 ? "gpu" : "cpu";
}

/// <summary>One silo's agent record. Key: the silo address. Fed by the silo itself; read by the management API.</summary>
[Alias("carml.IAgentGrain")]
public interface IAgentGrain : IGrainWithStringKey
{
    [Alias("Report")]
    Task ReportAsync(AgentInfo agent);

    [Alias("Get")]
    Task<AgentInfo?> GetAsync();
}

/// <summary>The agents that reported, with their last heartbeat, so listing never scans grains. Key: <c>default</c>.</summary>
[Alias("carml.IAgentIndexGrain")]
public interface IAgentIndexGrain : IGrainWithStringKey
{
    public const string DefaultKey = "default";

    [Alias("Heartbeat")]
    Task HeartbeatAsync(string agentId, DateTimeOffset at);

    [Alias("List")]
    Task<IReadOnlyList<(string AgentId, DateTimeOffset HeartbeatAt)>> ListAsync();

    [Alias("Forget")]
    Task ForgetAsync(string agentId);
}

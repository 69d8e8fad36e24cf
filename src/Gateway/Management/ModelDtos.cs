using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.Management;

public sealed record TensorDto(string Name, string Datatype, IReadOnlyList<long> Shape)
{
    public static TensorDto From(TensorSpec spec) => new(spec.Name, spec.Datatype.ToName(), spec.Shape);
}

public sealed record ArtifactDto(string Sha256, long SizeBytes);

/// <summary>A model version as the management API shows it.</summary>
public sealed record ModelVersionDto(
    string Name,
    string Version,
    string State,
    string? Reason,
    string Framework,
    string? Description,
    string? License,
    int MaxBatchSize,
    IReadOnlyList<TensorDto> Inputs,
    IReadOnlyList<TensorDto> Outputs,
    IReadOnlyList<string> Labels,
    IReadOnlyDictionary<string, string> Attributes,
    ArtifactDto Artifact,
    DateTimeOffset RegisteredAt,
    DateTimeOffset? ReadyAt,
    string? ExecutionProvider,
    int ReplicaCount,
    IReadOnlyList<ReplicaDto> Replicas)
{
    public static ModelVersionDto From(ModelStatus status)
    {
        var m = status.Manifest;
        return new ModelVersionDto(
            m.Name,
            m.Version,
            status.State.ToString().ToLowerInvariant(),
            status.Reason,
            m.Framework,
            m.Description,
            m.License,
            m.MaxBatchSize,
            m.Inputs.Select(TensorDto.From).ToArray(),
            m.Outputs.Select(TensorDto.From).ToArray(),
            m.Labels,
            m.Attributes,
            new ArtifactDto(status.Artifact.Sha256, status.Artifact.SizeBytes),
            status.RegisteredAt,
            status.ReadyAt,
            status.ExecutionProvider,
            status.ReplicaCount,
            status.Replicas.Select(ReplicaDto.From).ToArray());
    }
}

/// <summary>One replica of a version: where it runs, on what, and how it is doing.</summary>
public sealed record ReplicaDto(int Index, string State, string? Silo, string? ExecutionProvider, string? Reason)
{
    public static ReplicaDto From(ReplicaStatus replica) =>
        new(replica.Index, replica.State.ToString().ToLowerInvariant(), replica.SiloAddress, replica.ExecutionProvider, replica.Reason);
}

/// <summary>A model name with its versions; <see cref="Latest"/> is the highest.</summary>
public sealed record ModelSummaryDto(string Name, IReadOnlyList<string> Versions, string Latest);

public sealed record ModelListDto(IReadOnlyList<ModelSummaryDto> Models, string? NextPageToken);

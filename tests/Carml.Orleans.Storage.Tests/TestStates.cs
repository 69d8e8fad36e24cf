using Orleans;

namespace Carml.Orleans.Storage.Tests;

/// <summary>A mutable grain state, as grains keep in <c>IPersistentState</c>.</summary>
[GenerateSerializer]
public sealed class ModelRegistrationState
{
    [Id(0)] public string? ModelUri { get; set; }

    [Id(1)] public int Revision { get; set; }

    [Id(2)] public List<string> Tags { get; set; } = [];
}

/// <summary>An immutable record state, to show records serialize without JSON attributes.</summary>
[GenerateSerializer]
public sealed record ModelDescriptor(
    [property: Id(0)] string Name,
    [property: Id(1)] int Version,
    [property: Id(2)] IReadOnlyList<int> InputShape);

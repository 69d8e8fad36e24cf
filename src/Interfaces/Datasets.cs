namespace Carml.Orleans.Interfaces;

/// <summary>A registered dataset: a file in the content store, or an archive unpacked into a directory.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.DatasetInfo")]
public sealed record DatasetInfo
{
    [Id(0)] public required string Name { get; init; }
    [Id(1)] public string? Description { get; init; }

    /// <summary>SHA-256 of the file as received (the archive itself when it was unpacked).</summary>
    [Id(2)] public required string Sha256 { get; init; }
    [Id(3)] public long SizeBytes { get; init; }

    /// <summary>The files of an unpacked archive, relative and '/'-separated; empty for a single file.</summary>
    [Id(4)] public IReadOnlyList<string> Files { get; init; } = [];

    /// <summary>Where the data is on the silos' shared storage: the file, or the unpacked directory.</summary>
    [Id(5)] public required string Location { get; init; }
    [Id(6)] public DateTimeOffset RegisteredAt { get; init; }
    [Id(7)] public string? Origin { get; init; }
}

/// <summary>One dataset by name. Evaluations read datasets through it.</summary>
[Alias("carml.IDatasetGrain")]
public interface IDatasetGrain : IGrainWithStringKey
{
    /// <summary>Records the dataset; AlreadyExists when the name holds different data.</summary>
    [Alias("Register")]
    Task<DatasetInfo> RegisterAsync(DatasetInfo dataset);

    [Alias("Get")]
    Task<DatasetInfo?> GetAsync();

    [Alias("Delete")]
    Task<bool> DeleteAsync();
}

/// <summary>Names of registered datasets, for listing without scanning grains. Key: <c>default</c>.</summary>
[Alias("carml.IDatasetCatalogGrain")]
public interface IDatasetCatalogGrain : IGrainWithStringKey
{
    public const string DefaultKey = "default";

    [Alias("Add")]
    Task AddAsync(string name);

    [Alias("Remove")]
    Task RemoveAsync(string name);

    [Alias("List")]
    Task<IReadOnlyList<string>> ListAsync();
}

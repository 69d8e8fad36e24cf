using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains;

[GenerateSerializer]
[Alias("carml.DatasetGrainState")]
public sealed class DatasetGrainState
{
    [Id(0)] public DatasetInfo? Dataset { get; set; }
}

/// <summary>Holds one dataset's registration.</summary>
public sealed class DatasetGrain(
    [PersistentState("dataset", StorageNames.Models)] IPersistentState<DatasetGrainState> state) : Grain, IDatasetGrain
{
    public async Task<DatasetInfo> RegisterAsync(DatasetInfo dataset)
    {
        if (state.State.Dataset is { } existing)
        {
            return existing.Sha256 == dataset.Sha256 && existing.Location == dataset.Location
                ? existing
                : throw new ModelException(ModelErrorKind.AlreadyExists,
                    $"Dataset '{dataset.Name}' is already registered with different data; delete it first or use another name.");
        }

        state.State.Dataset = dataset;
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<IDatasetCatalogGrain>(IDatasetCatalogGrain.DefaultKey).AddAsync(dataset.Name);
        return dataset;
    }

    public Task<DatasetInfo?> GetAsync() => Task.FromResult(state.State.Dataset);

    public async Task<bool> DeleteAsync()
    {
        if (state.State.Dataset is null)
        {
            return false;
        }

        await GrainFactory.GetGrain<IDatasetCatalogGrain>(IDatasetCatalogGrain.DefaultKey).RemoveAsync(this.GetPrimaryKeyString());
        await state.ClearStateAsync();
        state.State = new DatasetGrainState();
        return true;
    }
}

[GenerateSerializer]
[Alias("carml.DatasetCatalogState")]
public sealed class DatasetCatalogState
{
    [Id(0)] public SortedSet<string> Names { get; set; } = new(StringComparer.Ordinal);
}

public sealed class DatasetCatalogGrain(
    [PersistentState("datasets", StorageNames.Models)] IPersistentState<DatasetCatalogState> catalog) : Grain, IDatasetCatalogGrain
{
    public async Task AddAsync(string name)
    {
        if (catalog.State.Names.Add(name))
        {
            await catalog.WriteStateAsync();
        }
    }

    public async Task RemoveAsync(string name)
    {
        if (catalog.State.Names.Remove(name))
        {
            await catalog.WriteStateAsync();
        }
    }

    public Task<IReadOnlyList<string>> ListAsync() => Task.FromResult<IReadOnlyList<string>>(catalog.State.Names.ToArray());
}

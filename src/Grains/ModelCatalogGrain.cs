using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains;

[GenerateSerializer]
[Alias("carml.ModelCatalogState")]
public sealed class ModelCatalogState
{
    [Id(0)] public Dictionary<string, List<string>> Versions { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>The index of registered names and versions, so that listing never touches the model grains.</summary>
public sealed class ModelCatalogGrain(
    [PersistentState("catalog", StorageNames.Models)] IPersistentState<ModelCatalogState> catalog) : Grain, IModelCatalogGrain
{
    public const int MaxPageSize = 1000;

    public async Task AddAsync(ModelId model)
    {
        var versions = catalog.State.Versions.TryGetValue(model.Name, out var list)
            ? list
            : catalog.State.Versions[model.Name] = [];
        if (versions.Contains(model.Version))
        {
            return;
        }

        versions.Add(model.Version);
        versions.Sort(ModelVersionComparer.Instance);
        await catalog.WriteStateAsync();
    }

    public async Task RemoveAsync(ModelId model)
    {
        if (!catalog.State.Versions.TryGetValue(model.Name, out var versions) || !versions.Remove(model.Version))
        {
            return;
        }

        if (versions.Count == 0)
        {
            catalog.State.Versions.Remove(model.Name);
        }

        await catalog.WriteStateAsync();
    }

    public Task<IReadOnlyList<string>> GetVersionsAsync(string name) =>
        Task.FromResult<IReadOnlyList<string>>(catalog.State.Versions.TryGetValue(name, out var versions) ? versions.ToArray() : []);

    public Task<ModelCatalogPage> ListAsync(string? pageToken, int pageSize)
    {
        if (pageSize is < 1 or > MaxPageSize)
        {
            throw ModelException.InvalidArgument($"page_size must be between 1 and {MaxPageSize}, got {pageSize}.");
        }

        var after = string.IsNullOrEmpty(pageToken) ? null : PageTokens.Decode(pageToken);
        var names = catalog.State.Versions.Keys
            .Where(n => after is null || string.CompareOrdinal(n, after) > 0)
            .Order(StringComparer.Ordinal)
            .Take(pageSize + 1)
            .ToList();
        var page = names.Take(pageSize)
            .Select(n => new ModelVersions(n, catalog.State.Versions[n].ToArray()))
            .ToArray();
        var next = names.Count > pageSize ? PageTokens.Encode(page[^1].Name) : null;
        return Task.FromResult(new ModelCatalogPage(page, next));
    }
}

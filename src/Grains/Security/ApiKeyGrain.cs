using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains.Security;

[GenerateSerializer]
[Alias("carml.ApiKeyState")]
public sealed class ApiKeyState
{
    [Id(0)] public ApiKeyRecord? Key { get; set; }
}

/// <summary>One API key's hashed secret and principal. Revoked keys stay, marked, so their ids are never reused.</summary>
public sealed class ApiKeyGrain(
    [PersistentState("apikey", StorageNames.Models)] IPersistentState<ApiKeyState> state) : Grain, IApiKeyGrain
{
    public async Task CreateAsync(ApiKeyRecord record)
    {
        if (state.State.Key is not null)
        {
            throw new ModelException(ModelErrorKind.AlreadyExists, $"API key {record.Id} exists.");
        }

        state.State.Key = record;
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<IApiKeyIndexGrain>(IApiKeyIndexGrain.DefaultKey).AddAsync(record.Id);
    }

    public Task<ApiKeyRecord?> GetAsync()
    {
        if (state.State.Key is null)
        {
            // A made-up key id: do not keep an activation per guess in the silo's memory.
            DeactivateOnIdle();
        }

        return Task.FromResult(state.State.Key);
    }

    public async Task<ApiKeyRecord?> RevokeAsync(DateTimeOffset at)
    {
        if (state.State.Key is not { } key)
        {
            return null;
        }

        if (key.RevokedAt is null)
        {
            state.State.Key = key with { RevokedAt = at };
            await state.WriteStateAsync();
        }

        return state.State.Key;
    }
}

[GenerateSerializer]
[Alias("carml.ApiKeyIndexState")]
public sealed class ApiKeyIndexState
{
    [Id(0)] public SortedSet<string> Ids { get; set; } = new(StringComparer.Ordinal);
}

public sealed class ApiKeyIndexGrain(
    [PersistentState("apikeys", StorageNames.Models)] IPersistentState<ApiKeyIndexState> index) : Grain, IApiKeyIndexGrain
{
    public async Task AddAsync(string id)
    {
        if (index.State.Ids.Add(id))
        {
            await index.WriteStateAsync();
        }
    }

    public Task<IReadOnlyList<string>> ListAsync() => Task.FromResult<IReadOnlyList<string>>(index.State.Ids.ToArray());
}

using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains.Security;

[GenerateSerializer]
[Alias("carml.ModelAccessState")]
public sealed class ModelAccessState
{
    [Id(0)] public ModelAccess? Access { get; set; }
}

/// <summary>Holds who owns a model name and who may read it, beside the model grains so they need not know.</summary>
public sealed class ModelAccessGrain(
    [PersistentState("access", StorageNames.Models)] IPersistentState<ModelAccessState> state) : Grain, IModelAccessGrain
{
    public Task<ModelAccess?> GetAsync() => Task.FromResult(state.State.Access);

    public async Task<(ModelAccess Access, bool Created)> ClaimAsync(ModelAccess proposed)
    {
        if (state.State.Access is { } existing)
        {
            return (existing, false);
        }

        state.State.Access = proposed with { Name = this.GetPrimaryKeyString() };
        await state.WriteStateAsync();
        return (state.State.Access, true);
    }

    public async Task<ModelAccess> SetAsync(ModelAccess access)
    {
        state.State.Access = access with { Name = this.GetPrimaryKeyString() };
        await state.WriteStateAsync();
        return state.State.Access;
    }

    public async Task ReleaseAsync()
    {
        if (state.State.Access is null)
        {
            return;
        }

        await state.ClearStateAsync();
        state.State = new ModelAccessState();
    }
}

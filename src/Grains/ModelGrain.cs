using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Logging;

namespace Carml.Orleans.Grains;

[GenerateSerializer]
[Alias("carml.ModelGrainState")]
public sealed class ModelGrainState
{
    [Id(0)] public ModelManifest? Manifest { get; set; }
    [Id(1)] public ModelArtifact? Artifact { get; set; }
    [Id(2)] public DateTimeOffset RegisteredAt { get; set; }
}

/// <summary>
/// Coordinates one model version: records the registration, drives its replica through loading, and reports the
/// lifecycle. The registration is persisted only after the replica has loaded the file and it matched the manifest.
/// </summary>
public sealed partial class ModelGrain(
    [PersistentState("model", StorageNames.Models)] IPersistentState<ModelGrainState> registration,
    ILogger<ModelGrain> logger) : Grain, IModelGrain
{
    private ModelState _state = ModelState.Registered;
    private string? _reason;
    private ReplicaInfo? _replica;
    private DateTimeOffset? _readyAt;

    private ModelId Id => ModelId.Parse(this.GetPrimaryKeyString());

    private IModelReplicaGrain Replica => GrainFactory.GetGrain<IModelReplicaGrain>(Id.ReplicaKey(0));

    public async Task<ModelStatus> RegisterAsync(ModelManifest manifest, ModelArtifact artifact)
    {
        if (manifest.Id != Id)
        {
            throw ModelException.InvalidArgument($"The manifest names {manifest.Id}, but this is {Id}.");
        }

        var problems = ManifestValidator.Validate(manifest);
        if (problems.Count > 0)
        {
            throw ManifestReader.Invalid(problems);
        }

        if (registration.State.Manifest is { } existing)
        {
            if (registration.State.Artifact == artifact && ManifestComparer.Equivalent(existing, manifest))
            {
                return await EnsureLoadedAsync();
            }

            throw new ModelException(
                ModelErrorKind.AlreadyExists,
                $"Model '{manifest.Name}' version '{manifest.Version}' is already registered with a different manifest or file; delete it first or register a new version.");
        }

        _state = ModelState.Loading;
        try
        {
            _replica = await Replica.LoadAsync(manifest, artifact);
        }
        catch (ModelException e)
        {
            _state = ModelState.Registered;
            LogRejected(logger, Id.Key, e.Message);
            throw;
        }

        registration.State.Manifest = manifest;
        registration.State.Artifact = artifact;
        registration.State.RegisteredAt = DateTimeOffset.UtcNow;
        await registration.WriteStateAsync();
        await GrainFactory.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).AddAsync(Id);

        MarkReady();
        LogRegistered(logger, Id.Key, artifact.Sha256, _replica.ExecutionProvider, _replica.LoadTime.TotalMilliseconds);
        return Status()!;
    }

    public Task<ModelStatus?> GetStatusAsync() => Task.FromResult(Status());

    public async Task<ModelStatus> EnsureLoadedAsync()
    {
        var (manifest, artifact) = Registration();

        // Ask the replica even when this grain is Ready: in a cluster the replica may have been lost with the silo that
        // hosted it and re-activated empty on another one. Loading is idempotent, so a loaded replica just answers.
        var wasReady = _state == ModelState.Ready;
        if (!wasReady)
        {
            _state = ModelState.Loading;
        }

        try
        {
            _replica = await Replica.LoadAsync(manifest, artifact);
            if (!wasReady)
            {
                MarkReady();
            }
        }
        catch (Exception e)
        {
            // A registered model that stops loading (file lost, runtime changed) is reported, not hidden.
            _state = ModelState.Failed;
            _reason = e.Message;
            LogLoadFailed(logger, Id.Key, e);
        }

        return Status()!;
    }

    public async Task<bool> DeleteAsync()
    {
        if (registration.State.Manifest is null)
        {
            return false;
        }

        await Replica.UnloadAsync();
        await GrainFactory.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).RemoveAsync(Id);
        await registration.ClearStateAsync();
        registration.State = new ModelGrainState();
        _state = ModelState.Registered;
        _replica = null;
        _reason = null;
        _readyAt = null;
        LogDeleted(logger, Id.Key);
        DeactivateOnIdle();
        return true;
    }

    private (ModelManifest Manifest, ModelArtifact Artifact) Registration() =>
        registration.State is { Manifest: { } manifest, Artifact: { } artifact }
            ? (manifest, artifact)
            : throw ModelException.UnknownModel(Id.Name, Id.Version);

    private void MarkReady()
    {
        _state = ModelState.Ready;
        _reason = null;
        _readyAt = DateTimeOffset.UtcNow;
    }

    private ModelStatus? Status() => registration.State is { Manifest: { } manifest, Artifact: { } artifact }
        ? new ModelStatus
        {
            Manifest = manifest,
            Artifact = artifact,
            State = _state,
            Reason = _reason,
            RegisteredAt = registration.State.RegisteredAt,
            ReadyAt = _readyAt,
            ExecutionProvider = _replica?.ExecutionProvider,
        }
        : null;

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Registered model {Model} (sha256 {Sha256}) on {Provider}, loaded in {LoadMs:F1} ms")]
    private static partial void LogRegistered(ILogger logger, string model, string sha256, string provider, double loadMs);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Rejected registration of model {Model}: {Reason}")]
    private static partial void LogRejected(ILogger logger, string model, string reason);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "Model {Model} failed to load")]
    private static partial void LogLoadFailed(ILogger logger, string model, Exception exception);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "Deleted model {Model}")]
    private static partial void LogDeleted(ILogger logger, string model);
}

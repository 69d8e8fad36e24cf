using Carml.Orleans.Interfaces;
using Orleans.Runtime;

namespace Carml.Orleans.Tests.Routing;

/// <summary>A grain factory over in-memory fakes: what a model grain reports and how each replica answers.</summary>
internal sealed class FakeGrainFactory : IGrainFactory
{
    public Dictionary<string, FakeModelGrain> Models { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, FakeReplicaGrain> Replicas { get; } = new(StringComparer.Ordinal);

    public TGrainInterface GetGrain<TGrainInterface>(string primaryKey, string? grainClassNamePrefix = null)
        where TGrainInterface : IGrainWithStringKey
    {
        object grain = typeof(TGrainInterface) == typeof(IModelGrain)
            ? Models[primaryKey]
            : typeof(TGrainInterface) == typeof(IModelReplicaGrain)
                ? Replicas.TryGetValue(primaryKey, out var replica) ? replica : Replicas[primaryKey] = new FakeReplicaGrain(primaryKey)
                : throw new NotSupportedException(typeof(TGrainInterface).Name);
        return (TGrainInterface)grain;
    }

    public TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey, string? grainClassNamePrefix = null) where TGrainInterface : IGrainWithGuidKey => throw new NotSupportedException();

    public TGrainInterface GetGrain<TGrainInterface>(long primaryKey, string? grainClassNamePrefix = null) where TGrainInterface : IGrainWithIntegerKey => throw new NotSupportedException();

    public TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey, string keyExtension, string? grainClassNamePrefix = null) where TGrainInterface : IGrainWithGuidCompoundKey => throw new NotSupportedException();

    public TGrainInterface GetGrain<TGrainInterface>(long primaryKey, string keyExtension, string? grainClassNamePrefix = null) where TGrainInterface : IGrainWithIntegerCompoundKey => throw new NotSupportedException();

    public TGrainObserverInterface CreateObjectReference<TGrainObserverInterface>(IGrainObserver obj) where TGrainObserverInterface : IGrainObserver => throw new NotSupportedException();

    public void DeleteObjectReference<TGrainObserverInterface>(IGrainObserver obj) where TGrainObserverInterface : IGrainObserver => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, Guid grainPrimaryKey) => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, long grainPrimaryKey) => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, string grainPrimaryKey) => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, Guid grainPrimaryKey, string keyExtension) => throw new NotSupportedException();

    public IGrain GetGrain(Type grainInterfaceType, long grainPrimaryKey, string keyExtension) => throw new NotSupportedException();

    public TGrainInterface GetGrain<TGrainInterface>(GrainId grainId) where TGrainInterface : IAddressable => throw new NotSupportedException();

    public IAddressable GetGrain(GrainId grainId) => throw new NotSupportedException();

    public IAddressable GetGrain(GrainId grainId, GrainInterfaceType interfaceType) => throw new NotSupportedException();

    public IAddressable GetGrain(Type grainInterfaceType, IdSpan grainPrimaryKey, string? grainClassNamePrefix) => throw new NotSupportedException();

    public IAddressable GetGrain(Type grainInterfaceType, IdSpan grainPrimaryKey) => throw new NotSupportedException();

    /// <summary>Registers a model version served by <paramref name="replicas"/> replicas that all answer at once.</summary>
    public ModelId AddModel(string name, int replicas)
    {
        var id = new ModelId(name, "1");
        Models[id.Key] = new FakeModelGrain(new ModelStatus
        {
            Manifest = new ModelManifest
            {
                Name = name,
                Version = "1",
                Inputs = [new TensorSpec("x", TensorDatatype.FP32, [-1, 1])],
                Outputs = [new TensorSpec("y", TensorDatatype.FP32, [-1, 1])],
            },
            Artifact = new ModelArtifact("00", 1),
            State = ModelState.Ready,
            ReplicaCount = replicas,
        });
        return id;
    }
}

internal sealed class FakeModelGrain(ModelStatus status) : IModelGrain
{
    private int _reads;

    /// <summary>Replaces the registered status (e.g. to throw as if the grain's silo were gone).</summary>
    public Func<ModelStatus?>? OnGetStatus { get; set; }

    public int Reads => Volatile.Read(ref _reads);

    public Task<ModelStatus?> GetStatusAsync()
    {
        Interlocked.Increment(ref _reads);
        return Task.FromResult(OnGetStatus is null ? status : OnGetStatus());
    }

    public Task<ModelStatus> RegisterAsync(ModelManifest manifest, ModelArtifact artifact) => throw new NotSupportedException();

    public Task<ModelStatus> EnsureLoadedAsync() => throw new NotSupportedException();

    public Task<bool> DeleteAsync() => throw new NotSupportedException();

    public Task<ModelRegistration?> GetRegistrationAsync() => throw new NotSupportedException();

    public Task<ModelStatus> ScaleAsync(int replicas) => throw new NotSupportedException();

    public Task ReplicaLoadedAsync(int index, ReplicaInfo info) => throw new NotSupportedException();

    public Task ReplicaUnloadedAsync(int index, string loadId, string reason) => throw new NotSupportedException();
}

/// <summary>A replica whose answer a test scripts; by default it answers with its own key as the output's name.</summary>
internal sealed class FakeReplicaGrain(string key) : IModelReplicaGrain
{
    private int _calls;

    public string Key { get; } = key;

    public int Calls => Volatile.Read(ref _calls);

    /// <summary>Called with the try number on this replica (1-based); returns null to answer normally.</summary>
    public Func<int, InferenceRequest, CancellationToken, Task<InferenceResponse?>>? Behaviour { get; set; }

    public List<long> TimeoutsSeen { get; } = [];

    public async Task<InferenceResponse> InferAsync(InferenceRequest request, CancellationToken cancellationToken = default)
    {
        var call = Interlocked.Increment(ref _calls);
        lock (TimeoutsSeen)
        {
            TimeoutsSeen.Add(request.TimeoutMicroseconds);
        }

        var scripted = Behaviour is null ? null : await Behaviour(call, request, cancellationToken);
        return scripted ?? new InferenceResponse("m", "1", [new InferenceTensor(Key, TensorDatatype.FP32, [1, 1], new byte[4])], new InferenceTimings(0, 0, 1));
    }

    public Task<ReplicaInfo> LoadAsync(ModelManifest manifest, ModelArtifact artifact) => throw new NotSupportedException();

    public Task<ReplicaStatistics> GetStatisticsAsync() => throw new NotSupportedException();

    public Task UnloadAsync() => throw new NotSupportedException();

    public Task EvictAsync(string loadId) => throw new NotSupportedException();

    public void FailWith(Func<Exception> failure) => Behaviour = (_, _, _) => Task.FromException<InferenceResponse?>(failure());
}

namespace Carml.Orleans.Registry;

/// <summary>A key with its value and the index of its last change (Consul's ModifyIndex), used for compare-and-swap.</summary>
public sealed record RegistryEntry(string Key, byte[] Value, ulong LastIndex);

/// <summary>Options of a write.</summary>
public sealed record RegistryWriteOptions
{
    /// <summary>When set, the key disappears once it has not been written again for this long (Consul: up to twice as long).</summary>
    public TimeSpan? Ttl { get; init; }
}

/// <summary>The outcome of <see cref="IRegistry.AtomicPutAsync"/>.</summary>
public sealed record AtomicPutResult(bool Succeeded, RegistryEntry? Entry);

/// <summary>One operation of a multi-key transaction.</summary>
public abstract record RegistryOperation(string Key)
{
    /// <summary>Write unconditionally.</summary>
    public sealed record Set(string Key, byte[] Value) : RegistryOperation(Key);

    /// <summary>Write only if the key's last index matches; 0 = only if the key does not exist.</summary>
    public sealed record CheckAndSet(string Key, byte[] Value, ulong LastIndex) : RegistryOperation(Key);

    /// <summary>Delete if present.</summary>
    public sealed record Delete(string Key) : RegistryOperation(Key);

    /// <summary>Delete only if the key's last index matches.</summary>
    public sealed record CheckAndDelete(string Key, ulong LastIndex) : RegistryOperation(Key);

    /// <summary>Fail the transaction unless the key's last index matches.</summary>
    public sealed record CheckIndex(string Key, ulong LastIndex) : RegistryOperation(Key);

    /// <summary>Fail the transaction if the key exists.</summary>
    public sealed record CheckNotExists(string Key) : RegistryOperation(Key);
}

/// <summary>A distributed lock; <see cref="LockAsync"/> returns a token cancelled when the lock is lost.</summary>
public interface IRegistryLock : IAsyncDisposable
{
    /// <summary>Waits until the lock is held. The returned token is cancelled if the lock is lost (its session died).</summary>
    Task<CancellationToken> LockAsync(CancellationToken cancellationToken = default);

    Task UnlockAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// CarML's key/value registry: keys are relative to the provider's root (default <c>carml/</c>). Providers: Consul (see
/// <see cref="ConsulRegistry"/>) and embedded (<see cref="EmbeddedRegistry"/>, in-process; held to the same contract tests, not wired into standalone mode, which needs no registry).
/// </summary>
public interface IRegistry : IAsyncDisposable
{
    Task PutAsync(string key, byte[] value, RegistryWriteOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>The entry, or null when the key does not exist.</summary>
    Task<RegistryEntry?> GetAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>True when the key existed.</summary>
    Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default);

    Task<bool> ExistsAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Yields the key's current entry (null while absent) at once, then after every change.</summary>
    IAsyncEnumerable<RegistryEntry?> WatchAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Yields the entries under a directory at once, then after every change beneath it.</summary>
    IAsyncEnumerable<IReadOnlyList<RegistryEntry>> WatchTreeAsync(string directory, CancellationToken cancellationToken = default);

    IRegistryLock NewLock(string key, TimeSpan? ttl = null);

    /// <summary>The entries under a directory (not the directory key itself), in key order.</summary>
    Task<IReadOnlyList<RegistryEntry>> ListAsync(string directory, CancellationToken cancellationToken = default);

    Task DeleteTreeAsync(string directory, CancellationToken cancellationToken = default);

    /// <summary>Writes only if the key is unchanged since <paramref name="previous"/> (or absent when it is null).</summary>
    Task<AtomicPutResult> AtomicPutAsync(string key, byte[] value, RegistryEntry? previous, RegistryWriteOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Deletes only if the key is unchanged since <paramref name="previous"/>.</summary>
    Task<bool> AtomicDeleteAsync(string key, RegistryEntry previous, CancellationToken cancellationToken = default);

    /// <summary>Applies every operation or none; false when a check failed and nothing was applied.</summary>
    Task<bool> CommitAsync(IReadOnlyList<RegistryOperation> operations, CancellationToken cancellationToken = default);

    /// <summary>Releases sessions and locks this registry holds.</summary>
    Task CloseAsync();
}

using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains.Placement;

/// <summary>
/// How much memory this silo's loaded model replicas may use. Section <c>Carml:Silo</c> (beside the silo's own settings).
/// </summary>
public sealed class ModelMemoryOptions
{
    public const string Section = "Carml:Silo";

    /// <summary>Bytes the loaded replicas may use together; 0 = unlimited (no eviction).</summary>
    public long ModelMemoryBudgetBytes { get; set; }

    /// <summary>
    /// A replica is charged its model file's size times this factor (the weights plus the runtime's working buffers and
    /// optimized graph copies; ONNX Runtime on CPU typically needs 1.5-3× the file).
    /// </summary>
    public double ModelMemoryFactor { get; set; } = 2.0;

    public long EstimateBytes(long fileBytes) => (long)Math.Ceiling(Math.Max(1, fileBytes) * ModelMemoryFactor);
}

/// <summary>A loaded replica as the budget sees it: whether a request is using it, when it was last used, how to evict it.</summary>
public interface IMemoryResident
{
    int InFlight { get; }

    /// <summary>A monotonic timestamp (<see cref="TimeProvider.GetTimestamp"/>) of the last request.</summary>
    long LastUsed { get; }

    string ExecutionProvider { get; }

    /// <summary>Starts unloading it; its memory is already released from the budget.</summary>
    void Evict();
}

/// <summary>
/// The per-silo memory budget for loaded model replicas, with least-recently-used eviction of idle replicas. Loading a
/// replica reserves its estimated memory; when that would exceed the budget, idle replicas (no request in flight) are
/// evicted, least recently used first; if even that cannot make room the load is refused (ResourceExhausted). The
/// counters are plain properties for metrics to read.
/// </summary>
public sealed class ModelMemoryBudget(long budgetBytes, TimeProvider time)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (long Bytes, IMemoryResident Resident)> _loaded = new(StringComparer.Ordinal);
    private long _used;
    private long _evictions;
    private long _loads;
    private long _refusals;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long BudgetBytes { get; } = budgetBytes;

    public long UsedBytes => Interlocked.Read(ref _used);

    public long Evictions => Interlocked.Read(ref _evictions);

    public long Loads => Interlocked.Read(ref _loads);

    /// <summary>Loads refused because nothing idle could be evicted to make room.</summary>
    public long Refusals => Interlocked.Read(ref _refusals);

    /// <summary>Completes the next time a replica is charged or released (the agent publisher reports then).</summary>
    public Task NextChange => Volatile.Read(ref _changed).Task;

    public int LoadedCount
    {
        get
        {
            lock (_lock)
            {
                return _loaded.Count;
            }
        }
    }

    /// <summary>
    /// Charges <paramref name="bytes"/> to <paramref name="key"/>, first evicting the least recently used idle replicas
    /// if needed. Returns the replicas evicted (already released; the caller logs them, <see cref="IMemoryResident.Evict"/>
    /// has been called). Throws <see cref="ModelException"/> ResourceExhausted when it cannot fit.
    /// </summary>
    public IReadOnlyList<string> Reserve(string key, long bytes, IMemoryResident resident)
    {
        List<(string Key, IMemoryResident Resident)> victims = [];
        lock (_lock)
        {
            if (_loaded.Remove(key, out var previous))
            {
                _used -= previous.Bytes;
            }

            if (BudgetBytes > 0 && _used + bytes > BudgetBytes)
            {
                var needed = _used + bytes - BudgetBytes;
                long freed = 0;
                foreach (var (candidate, entry) in _loaded.Where(e => e.Value.Resident.InFlight == 0).OrderBy(e => e.Value.Resident.LastUsed))
                {
                    if (freed >= needed)
                    {
                        break;
                    }

                    victims.Add((candidate, entry.Resident));
                    freed += entry.Bytes;
                }

                if (freed < needed || bytes > BudgetBytes)
                {
                    _refusals++;
                    var busy = _loaded.Count(e => e.Value.Resident.InFlight > 0);
                    throw new ModelException(
                        ModelErrorKind.ResourceExhausted,
                        $"Replica {key} needs {Mib(bytes)} MiB but the silo's model memory budget is {Mib(BudgetBytes)} MiB with {Mib(_used)} MiB in use by {_loaded.Count} replicas ({busy} serving requests); nothing idle can be unloaded to make room.");
                }

                foreach (var (victim, _) in victims)
                {
                    _used -= _loaded[victim].Bytes;
                    _loaded.Remove(victim);
                }

                _evictions += victims.Count;
                CarmlTelemetry.ModelEvictions.Add(victims.Count);
            }

            _loaded[key] = (bytes, resident);
            _used += bytes;
            _loads++;
        }

        SignalChange();

        foreach (var (_, victim) in victims)
        {
            victim.Evict();
        }

        return victims.Select(v => v.Key).ToArray();
    }

    /// <summary>Releases the replica's memory, if <paramref name="resident"/> still holds it (an evicted one does not).</summary>
    public void Release(string key, IMemoryResident resident)
    {
        lock (_lock)
        {
            if (!_loaded.TryGetValue(key, out var entry) || !ReferenceEquals(entry.Resident, resident))
            {
                return;
            }

            _loaded.Remove(key);
            _used -= entry.Bytes;
        }

        SignalChange();
    }

    /// <summary>Tells watchers (the agent report) that a reserved replica finished loading and now has its provider.</summary>
    public void Loaded() => SignalChange();

    private void SignalChange() =>
        Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>The loaded replicas, most recently used first.</summary>
    public IReadOnlyList<LoadedReplica> Snapshot()
    {
        var now = time.GetUtcNow();
        var stamp = time.GetTimestamp();
        lock (_lock)
        {
            return _loaded
                .OrderByDescending(e => e.Value.Resident.LastUsed)
                .Select(e => new LoadedReplica(
                    e.Key,
                    e.Value.Resident.ExecutionProvider,
                    e.Value.Bytes,
                    now - time.GetElapsedTime(e.Value.Resident.LastUsed, stamp),
                    e.Value.Resident.InFlight))
                .ToArray();
        }
    }

    private static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
}

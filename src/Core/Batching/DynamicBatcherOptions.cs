using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core.Batching;

/// <summary>The limits of a <see cref="DynamicBatcher{TRequest, TResult}"/>.</summary>
public sealed record DynamicBatcherOptions
{
    /// <summary>False: every request runs on its own (the queue, its limits and timeouts still apply).</summary>
    public bool MergeRequests { get; init; } = true;

    /// <summary>The most rows a merged batch may have (the model's max_batch_size).</summary>
    public int MaxBatchRows { get; init; } = 1;

    /// <summary>How long the oldest request may wait for others to join its batch.</summary>
    public TimeSpan MaxQueueDelay { get; init; }

    /// <summary>Batch sizes dispatched as soon as they can be formed.</summary>
    public IReadOnlyList<int> PreferredBatchSizes { get; init; } = [];

    /// <summary>Requests that may wait; 0 = unbounded.</summary>
    public int MaxQueueSize { get; init; }

    /// <summary>How long a request may wait when it brings no timeout of its own; null = no limit.</summary>
    public TimeSpan? DefaultTimeout { get; init; }

    /// <summary>Batches that may run at once.</summary>
    public int MaxConcurrentBatches { get; init; } = 1;

    /// <summary>The batcher for a model: its manifest's <c>dynamic_batching</c> and <c>max_batch_size</c>.</summary>
    public static DynamicBatcherOptions For(ModelManifest manifest, int maxConcurrentRuns)
    {
        var batching = manifest.DynamicBatching;
        var merge = batching is { Enabled: true } && manifest.MaxBatchSize > 0;
        return new DynamicBatcherOptions
        {
            MergeRequests = merge,
            MaxBatchRows = merge ? manifest.MaxBatchSize : 1,
            MaxQueueDelay = TimeSpan.FromMicroseconds(batching?.MaxQueueDelayMicroseconds ?? 0),
            PreferredBatchSizes = batching?.PreferredBatchSizes ?? [],
            MaxQueueSize = batching?.MaxQueueSize ?? 0,
            DefaultTimeout = batching is { DefaultTimeoutMicroseconds: > 0 } ? TimeSpan.FromMicroseconds(batching.DefaultTimeoutMicroseconds) : null,
            MaxConcurrentBatches = maxConcurrentRuns,
        };
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        if (MaxBatchRows < 1)
        {
            throw new ArgumentException($"MaxBatchRows must be at least 1, got {MaxBatchRows}.");
        }

        if (MaxQueueDelay < TimeSpan.Zero)
        {
            throw new ArgumentException($"MaxQueueDelay must not be negative, got {MaxQueueDelay}.");
        }

        if (MaxQueueSize < 0)
        {
            throw new ArgumentException($"MaxQueueSize must be 0 (unbounded) or positive, got {MaxQueueSize}.");
        }

        if (MaxConcurrentBatches < 1)
        {
            throw new ArgumentException($"MaxConcurrentBatches must be at least 1, got {MaxConcurrentBatches}.");
        }

        if (DefaultTimeout is { } timeout && timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"DefaultTimeout must be positive when set, got {timeout}.");
        }
    }
}

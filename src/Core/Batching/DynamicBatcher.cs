using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core.Batching;

/// <summary>
/// A request queue in front of a model runtime that merges compatible requests into batches, after Triton's dynamic
/// batcher. A batch is dispatched when an execution slot is free and
/// <list type="bullet">
/// <item>the compatible requests at the head of the queue fill <see cref="DynamicBatcherOptions.MaxBatchRows"/>, or</item>
/// <item>a prefix of them adds up to a preferred batch size (the largest such prefix is taken), or</item>
/// <item>the oldest of them has waited <see cref="DynamicBatcherOptions.MaxQueueDelay"/> (zero: at once).</item>
/// </list>
/// Requests are never split, only requests the compatibility function accepts share a batch (the same non-batch
/// dimensions), and requests of one kind leave in arrival order. A full queue refuses with ResourceExhausted; a request
/// that waits past its timeout fails with DeadlineExceeded and a cancelled one leaves the queue at once; neither ever
/// reaches the runtime. Time comes from a <see cref="TimeProvider"/>, so tests drive it with a fake clock.
/// Thread-safe; the executor is invoked without the lock held and must not block the caller (start the work, return its task).
/// </summary>
public sealed class DynamicBatcher<TRequest, TResult> : IDisposable
{
    [ThreadStatic]
    private static Queue<(DynamicBatcher<TRequest, TResult>, Pending[])>? t_deferred;

    [ThreadStatic]
    private static bool t_dispatching;

    private readonly DynamicBatcherOptions _options;
    private readonly Func<IReadOnlyList<TRequest>, Task<IReadOnlyList<TResult>>> _execute;
    private readonly Func<TRequest, TRequest, bool> _compatible;
    private readonly TimeProvider _time;
    private readonly string _name;
    private readonly Lock _lock = new();
    private readonly List<Pending> _queue = [];
    private readonly List<int> _members = []; // TakeCount's choice, under _lock
    private readonly ITimer _delayTimer;
    private long _delayTimerDue = long.MaxValue;
    private int _running;
    private bool _disposed;
    private long _requests;
    private long _batches;
    private long _batchedRequests;
    private long _batchedRows;
    private int _maxBatchRows;
    private long _rejected;
    private long _expired;
    private long _cancelled;

    /// <param name="options">Batch limits, delay and queue limits.</param>
    /// <param name="execute">Runs one batch and answers one result per request, in order. Called without the lock held.</param>
    /// <param name="compatible">Whether two requests may share a batch.</param>
    /// <param name="time">The clock (the system's, or a fake one in tests).</param>
    /// <param name="name">What the queue serves, for error messages (e.g. "model 'mlp' version '1'").</param>
    public DynamicBatcher(
        DynamicBatcherOptions options,
        Func<IReadOnlyList<TRequest>, Task<IReadOnlyList<TResult>>> execute,
        Func<TRequest, TRequest, bool> compatible,
        TimeProvider time,
        string name)
    {
        options.Validate();
        _options = options;
        _execute = execute;
        _compatible = compatible;
        _time = time;
        _name = name;
        _delayTimer = time.CreateTimer(static state => ((DynamicBatcher<TRequest, TResult>)state!).OnDelayElapsed(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public DynamicBatcherOptions Options => _options;

    /// <summary>
    /// Queues a request of <paramref name="rows"/> rows. Completes with its result when its batch has run; throws
    /// <see cref="ModelException"/> ResourceExhausted (queue full) or DeadlineExceeded (waited past
    /// <paramref name="timeout"/>, or the default timeout), or <see cref="OperationCanceledException"/> when cancelled.
    /// </summary>
    public Task<BatchedResult<TResult>> EnqueueAsync(TRequest request, int rows, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        if (cancellationToken.IsCancellationRequested)
        {
            Interlocked.Increment(ref _cancelled);
            return Task.FromCanceled<BatchedResult<TResult>>(cancellationToken);
        }

        if (rows > _options.MaxBatchRows && _options.MergeRequests)
        {
            throw ModelException.InvalidArgument($"{_name}: a request of {rows} rows exceeds the batch limit of {_options.MaxBatchRows} rows");
        }

        var effectiveTimeout = timeout is { } t && t > TimeSpan.Zero ? t : _options.DefaultTimeout;
        var pending = new Pending(this, request, rows, _time.GetTimestamp(), effectiveTimeout, cancellationToken);
        lock (_lock)
        {
            if (_disposed)
            {
                throw new ModelException(ModelErrorKind.Unavailable, $"{_name} was unloaded; retry.");
            }

            if (_options.MaxQueueSize > 0 && _queue.Count >= _options.MaxQueueSize)
            {
                _rejected++;
                throw new ModelException(
                    ModelErrorKind.ResourceExhausted,
                    $"The queue of {_name} is full ({_options.MaxQueueSize} requests waiting); retry later or raise dynamic_batching.max_queue_size.");
            }

            _requests++;
            _queue.Add(pending);
        }

        // Registered after the request is queued: a token cancelled in between finds it there and takes it out.
        pending.Arm();
        Schedule();
        return pending.Completion.Task;
    }

    /// <summary>Counters since the batcher was created, and the queue as it is now.</summary>
    public DynamicBatcherStatistics GetStatistics()
    {
        lock (_lock)
        {
            return new DynamicBatcherStatistics(
                _requests, _batches, _batchedRequests, _batchedRows, _maxBatchRows, _rejected, _expired, _cancelled, _queue.Count, _running);
        }
    }

    /// <summary>Fails every queued request with Unavailable; batches already running finish.</summary>
    public void Dispose()
    {
        Pending[] orphans;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            orphans = [.. _queue];
            _queue.Clear();
        }

        _delayTimer.Dispose();
        foreach (var pending in orphans)
        {
            pending.Disarm();
            pending.Completion.TrySetException(new ModelException(ModelErrorKind.Unavailable, $"{_name} was unloaded before the request ran; retry."));
        }
    }

    private void OnDelayElapsed()
    {
        lock (_lock)
        {
            _delayTimerDue = long.MaxValue;
        }

        Schedule();
    }

    /// <summary>Dispatches every batch that is due while execution slots are free; arms the delay timer otherwise.</summary>
    private void Schedule()
    {
        List<Pending[]>? batches = null;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            var now = _time.GetTimestamp();
            while (_running < _options.MaxConcurrentBatches && _queue.Count > 0)
            {
                var count = TakeCount(now, out var waitUntil);
                if (count == 0)
                {
                    ArmDelayTimer(waitUntil, now);
                    break;
                }

                _running++;
                (batches ??= []).Add(TakeBatch(count));
            }
        }

        if (batches is not null)
        {
            Dispatch(batches);
        }
    }

    /// <summary>
    /// Starts batches. An executor may finish synchronously (a short model run inline on the caller's thread); the
    /// completion then schedules the next batch on the same stack. Batches started while this thread is already
    /// dispatching are deferred to the outermost call's loop, so a busy queue never deepens the stack.
    /// </summary>
    private void Dispatch(List<Pending[]> batches)
    {
        var deferred = t_deferred ??= new Queue<(DynamicBatcher<TRequest, TResult>, Pending[])>();
        if (t_dispatching)
        {
            foreach (var batch in batches)
            {
                deferred.Enqueue((this, batch));
            }

            return;
        }

        t_dispatching = true;
        try
        {
            foreach (var batch in batches)
            {
                _ = RunAsync(batch);
            }

            while (deferred.TryDequeue(out var next))
            {
                _ = next.Item1.RunAsync(next.Item2);
            }
        }
        finally
        {
            t_dispatching = false;
        }
    }

    /// <summary>
    /// Removes the first <paramref name="count"/> members <see cref="TakeCount"/> chose (queue indices, ascending) from
    /// the queue in one pass, keeping everyone else in arrival order.
    /// </summary>
    private Pending[] TakeBatch(int count)
    {
        var batch = new Pending[count];
        var write = _members[0];
        var taken = 0;
        for (var read = write; read < _queue.Count; read++)
        {
            if (taken < count && read == _members[taken])
            {
                batch[taken++] = _queue[read];
            }
            else
            {
                _queue[write++] = _queue[read];
            }
        }

        _queue.RemoveRange(write, _queue.Count - write);
        return batch;
    }

    /// <summary>
    /// How many requests from the head's kind to dispatch now (0 = wait until <paramref name="waitUntil"/>); the
    /// candidates' queue indices are left in <see cref="_members"/>, so the batch is taken without asking
    /// compatibility again.
    /// </summary>
    private int TakeCount(long now, out long waitUntil)
    {
        waitUntil = long.MaxValue;
        _members.Clear();
        if (!_options.MergeRequests)
        {
            _members.Add(0);
            return 1;
        }

        var head = _queue[0];
        var rows = 0;
        var count = 0;
        var preferredCount = 0;
        var full = false;
        for (var i = 0; i < _queue.Count; i++)
        {
            var candidate = _queue[i];
            if (i > 0 && !_compatible(head.Request, candidate.Request))
            {
                continue;
            }

            if (rows + candidate.Rows > _options.MaxBatchRows)
            {
                // Requests are never split, and a kind leaves in arrival order: this one starts the next batch.
                full = true;
                break;
            }

            rows += candidate.Rows;
            count++;
            _members.Add(i);
            if (IsPreferred(rows))
            {
                preferredCount = count;
            }

            if (rows == _options.MaxBatchRows)
            {
                full = true;
                break;
            }
        }

        if (full)
        {
            return preferredCount > 0 ? preferredCount : count;
        }

        if (preferredCount > 0)
        {
            return preferredCount;
        }

        var due = head.EnqueuedAt + (long)(_options.MaxQueueDelay.TotalSeconds * _time.TimestampFrequency);
        if (now >= due)
        {
            return count;
        }

        waitUntil = due;
        return 0;
    }

    private bool IsPreferred(int rows)
    {
        var preferred = _options.PreferredBatchSizes;
        for (var i = 0; i < preferred.Count; i++)
        {
            if (preferred[i] == rows)
            {
                return true;
            }
        }

        return false;
    }

    private void ArmDelayTimer(long due, long now)
    {
        if (due >= _delayTimerDue)
        {
            return;
        }

        _delayTimerDue = due;
        var wait = TimeSpan.FromSeconds((double)(due - now) / _time.TimestampFrequency);
        _delayTimer.Change(wait < TimeSpan.Zero ? TimeSpan.Zero : wait, Timeout.InfiniteTimeSpan);
    }

    private async Task RunAsync(Pending[] batch)
    {
        var started = _time.GetTimestamp();
        List<Pending>? live = null;
        var rows = 0;
        foreach (var pending in batch)
        {
            pending.Disarm();
            if (pending.CancellationToken.IsCancellationRequested)
            {
                // Cancelled while being dispatched: it still never reaches the runtime.
                Interlocked.Increment(ref _cancelled);
                pending.Completion.TrySetCanceled(pending.CancellationToken);
                continue;
            }

            (live ??= new List<Pending>(batch.Length)).Add(pending);
            rows += pending.Rows;
        }

        try
        {
            if (live is null)
            {
                return;
            }

            var requests = new TRequest[live.Count];
            for (var i = 0; i < requests.Length; i++)
            {
                requests[i] = live[i].Request;
            }

            lock (_lock)
            {
                _batches++;
                _batchedRequests += live.Count;
                _batchedRows += rows;
                _maxBatchRows = Math.Max(_maxBatchRows, rows);
            }

            IReadOnlyList<TResult> results;
            try
            {
                results = await _execute(requests).ConfigureAwait(false);
                if (results.Count != requests.Length)
                {
                    throw new InvalidOperationException($"The batch executor answered {results.Count} results for {requests.Length} requests.");
                }
            }
            catch (Exception e)
            {
                foreach (var pending in live)
                {
                    pending.Completion.TrySetException(e);
                }

                return;
            }

            var finished = _time.GetTimestamp();
            var compute = _time.GetElapsedTime(started, finished);
            for (var i = 0; i < live.Count; i++)
            {
                var pending = live[i];
                pending.Completion.TrySetResult(new BatchedResult<TResult>(
                    results[i], _time.GetElapsedTime(pending.EnqueuedAt, started), compute, rows, live.Count));
            }
        }
        finally
        {
            lock (_lock)
            {
                _running--;
            }

            Schedule();
        }
    }

    /// <summary>Takes a request out of the queue if it is still there (false: dispatched or already gone).</summary>
    private bool Remove(Pending pending)
    {
        lock (_lock)
        {
            return _queue.Remove(pending);
        }
    }

    private void OnCancelled(Pending pending)
    {
        if (Remove(pending))
        {
            pending.Disarm();
            Interlocked.Increment(ref _cancelled);
            pending.Completion.TrySetCanceled(pending.CancellationToken);
            Schedule();
        }
    }

    private void OnTimedOut(Pending pending)
    {
        if (Remove(pending))
        {
            pending.Disarm();
            Interlocked.Increment(ref _expired);
            var waited = _time.GetElapsedTime(pending.EnqueuedAt);
            pending.Completion.TrySetException(new ModelException(
                ModelErrorKind.DeadlineExceeded,
                $"The request waited {waited.TotalMilliseconds:0.###} ms in the queue of {_name} and passed its timeout of {pending.Timeout!.Value.TotalMilliseconds:0.###} ms; it was not run."));
            Schedule();
        }
    }

    /// <summary>One queued request.</summary>
    private sealed class Pending(
        DynamicBatcher<TRequest, TResult> owner, TRequest request, int rows, long enqueuedAt, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        private CancellationTokenRegistration _registration;
        private ITimer? _timer;
        private int _disarmed;

        public TRequest Request { get; } = request;
        public int Rows { get; } = rows;
        public long EnqueuedAt { get; } = enqueuedAt;
        public TimeSpan? Timeout { get; } = timeout;
        public CancellationToken CancellationToken { get; } = cancellationToken;
        public TaskCompletionSource<BatchedResult<TResult>> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Arm()
        {
            if (Timeout is { } timeout)
            {
                Interlocked.Exchange(ref _timer, owner._time.CreateTimer(static s => ((Pending)s!).Expire(), this, timeout, System.Threading.Timeout.InfiniteTimeSpan));
            }

            if (CancellationToken.CanBeCanceled)
            {
                _registration = CancellationToken.UnsafeRegister(static s => ((Pending)s!).Cancel(), this);
            }

            // Another thread may have dispatched (and disarmed) the request between its queueing and this call:
            // then nothing armed here may outlive it.
            if (Volatile.Read(ref _disarmed) == 1)
            {
                Release();
            }
        }

        /// <summary>Stops the timer and the cancellation callback; never waits for a running callback.</summary>
        public void Disarm()
        {
            Interlocked.Exchange(ref _disarmed, 1);
            Release();
        }

        private void Release()
        {
            Volatile.Read(ref _timer)?.Dispose();
            _registration.Unregister();
        }

        private void Expire() => owner.OnTimedOut(this);

        private void Cancel() => owner.OnCancelled(this);
    }
}

/// <summary>What a request's batch produced for it, with where its time went.</summary>
public readonly record struct BatchedResult<TResult>(TResult Value, TimeSpan QueueTime, TimeSpan ComputeTime, int BatchRows, int BatchRequests);

/// <summary>Counters of a <see cref="DynamicBatcher{TRequest, TResult}"/>.</summary>
public sealed record DynamicBatcherStatistics(
    long Requests,
    long Batches,
    long BatchedRequests,
    long BatchedRows,
    int MaxBatchRows,
    long Rejected,
    long Expired,
    long Cancelled,
    int Queued,
    int Running);

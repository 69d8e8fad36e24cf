namespace Carml.Orleans.ConsulEmulator;

/// <summary>
/// The state of an emulated Consul agent and its servers, and the documented semantics over it: one Raft index that
/// every write advances, CreateIndex/ModifyIndex/LockIndex per key, check-and-set, atomic transactions, sessions with TTL
/// (invalidated after twice the TTL, as Consul does) and release/delete behaviors with lock-delay, agent services with
/// TTL checks that go critical and are reaped after DeregisterCriticalServiceAfter. Times come from a
/// <see cref="TimeProvider"/> so tests can move the clock; blocking queries wait in real time.
/// </summary>
public sealed class ConsulEmulatorState
{
    public const string NodeName = "consul-emulator";
    public const string Datacenter = "dc1";
    public const int MaxTransactionOperations = 64;
    public const int MaxValueBytes = 512 * 1024;

    private readonly object _sync = new();
    private readonly SortedDictionary<string, KvRecord> _kv = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ulong> _tombstones = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SessionRecord> _sessions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _lockDelays = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServiceRecord> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CheckRecord> _checks = new(StringComparer.Ordinal);
    private readonly ITimer _sweeper;
    private TaskCompletionSource _changed = NewSignal();
    private ulong _index = 1;
    private ulong _kvIndex = 1;
    private ulong _sessionIndex = 1;
    private ulong _healthIndex = 1;
    private long _requests;

    public ConsulEmulatorState(TimeProvider? time = null)
    {
        Time = time ?? TimeProvider.System;
        _sweeper = Time.CreateTimer(_ => Sweep(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
    }

    public TimeProvider Time { get; }

    /// <summary>Requests served under <c>/v1</c>, for tests that check something was not retried.</summary>
    public long RequestCount => Interlocked.Read(ref _requests);

    internal void CountRequest() => Interlocked.Increment(ref _requests);

    // ---- KV ----

    public ulong KvIndexFor(string key, bool prefix)
    {
        lock (_sync)
        {
            SweepLocked();
            ulong index = 0;
            if (!prefix)
            {
                if (_kv.TryGetValue(key, out var record))
                {
                    return record.ModifyIndex;
                }

                return _tombstones.TryGetValue(key, out var deleted) ? deleted : _kvIndex;
            }

            foreach (var (k, record) in _kv)
            {
                if (k.StartsWith(key, StringComparison.Ordinal))
                {
                    index = Math.Max(index, record.ModifyIndex);
                }
            }

            foreach (var (k, deleted) in _tombstones)
            {
                if (k.StartsWith(key, StringComparison.Ordinal))
                {
                    index = Math.Max(index, deleted);
                }
            }

            return index == 0 ? _kvIndex : index;
        }
    }

    public IReadOnlyList<KvRecord> KvRead(string key, bool prefix)
    {
        lock (_sync)
        {
            SweepLocked();
            if (!prefix)
            {
                return _kv.TryGetValue(key, out var record) ? [record.Clone()] : [];
            }

            return _kv.Where(pair => pair.Key.StartsWith(key, StringComparison.Ordinal)).Select(pair => pair.Value.Clone()).ToArray();
        }
    }

    /// <summary>PUT /v1/kv: false when a cas did not match or an acquire/release was refused.</summary>
    public bool KvPut(string key, byte[] value, ulong? flags, ulong? cas, string? acquire, string? release)
    {
        lock (_sync)
        {
            SweepLocked();
            _kv.TryGetValue(key, out var existing);
            if (cas is { } expected && (expected == 0 ? existing is not null : existing?.ModifyIndex != expected))
            {
                return false;
            }

            var session = acquire ?? release;
            if (session is not null && !_sessions.ContainsKey(session))
            {
                throw new EmulatorError(500, $"invalid session \"{session}\"");
            }

            if (acquire is not null)
            {
                if (existing?.Session is { } holder && holder != acquire)
                {
                    return false;
                }

                if (_lockDelays.TryGetValue(key, out var until) && until > Time.GetUtcNow())
                {
                    return false;
                }
            }

            if (release is not null && existing?.Session != release)
            {
                return false;
            }

            var index = NextIndex();
            var record = existing ?? new KvRecord { Key = key, CreateIndex = index };
            record.Value = value;
            record.Flags = flags ?? record.Flags;
            record.ModifyIndex = index;
            if (acquire is not null && record.Session != acquire)
            {
                record.Session = acquire;
                record.LockIndex++;
            }

            if (release is not null)
            {
                record.Session = null;
            }

            _kv[key] = record;
            _tombstones.Remove(key);
            _kvIndex = index;
            Signal();
            return true;
        }
    }

    /// <summary>DELETE /v1/kv: false when a cas did not match.</summary>
    public bool KvDelete(string key, bool recurse, ulong? cas)
    {
        lock (_sync)
        {
            SweepLocked();
            if (cas is { } expected && !recurse)
            {
                if (!_kv.TryGetValue(key, out var existing) || existing.ModifyIndex != expected)
                {
                    return false;
                }
            }

            var keys = recurse ? _kv.Keys.Where(k => k.StartsWith(key, StringComparison.Ordinal)).ToArray() : _kv.ContainsKey(key) ? [key] : [];
            if (keys.Length == 0)
            {
                return true;
            }

            var index = NextIndex();
            foreach (var k in keys)
            {
                _kv.Remove(k);
                _tombstones[k] = index;
            }

            _kvIndex = index;
            Signal();
            return true;
        }
    }

    /// <summary>POST/PUT /v1/txn: every operation or none, all writes at one index.</summary>
    public TxnOutcome Transaction(IReadOnlyList<TxnOperation> operations)
    {
        lock (_sync)
        {
            SweepLocked();
            var overlay = new Dictionary<string, KvRecord?>(StringComparer.Ordinal);
            var newIndex = _index + 1;
            var results = new List<KvRecord>();
            var wrote = false;

            KvRecord? Get(string key) => overlay.TryGetValue(key, out var o) ? o : _kv.TryGetValue(key, out var r) ? r.Clone() : null;

            IEnumerable<string> KeysUnder(string prefix) =>
                _kv.Keys.Concat(overlay.Keys).Distinct(StringComparer.Ordinal).Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && Get(k) is not null).Order(StringComparer.Ordinal).ToArray();

            KvRecord Write(string key, byte[]? value, ulong flags)
            {
                var current = Get(key);
                var record = current ?? new KvRecord { Key = key, CreateIndex = newIndex };
                record.Value = value ?? [];
                record.Flags = flags;
                record.ModifyIndex = newIndex;
                overlay[key] = record;
                wrote = true;
                return record;
            }

            for (var i = 0; i < operations.Count; i++)
            {
                var op = operations[i];
                var current = Get(op.Key);
                string? error = null;
                switch (op.Verb)
                {
                    case "set":
                        results.Add(Write(op.Key, op.Value, op.Flags).WithoutValue());
                        break;
                    case "cas":
                        if (op.Index == 0 ? current is not null : current?.ModifyIndex != op.Index)
                        {
                            error = $"failed to set key \"{op.Key}\", index is stale";
                        }
                        else
                        {
                            results.Add(Write(op.Key, op.Value, op.Flags).WithoutValue());
                        }

                        break;
                    case "lock":
                        if (op.Session is null || !_sessions.ContainsKey(op.Session))
                        {
                            error = $"failed to lock key \"{op.Key}\": invalid session \"{op.Session}\"";
                        }
                        else if (current?.Session is { } holder && holder != op.Session)
                        {
                            error = $"failed to lock key \"{op.Key}\", lock is already held";
                        }
                        else if (current?.Session != op.Session && _lockDelays.TryGetValue(op.Key, out var delayedUntil) && delayedUntil > Time.GetUtcNow())
                        {
                            // Consul checks the lock-delay before applying a lock, in a transaction as in a PUT ?acquire.
                            error = $"failed to lock key \"{op.Key}\" due to lock delay";
                        }
                        else
                        {
                            var record = Write(op.Key, op.Value, op.Flags);
                            if (record.Session != op.Session)
                            {
                                record.Session = op.Session;
                                record.LockIndex++;
                            }

                            results.Add(record.WithoutValue());
                        }

                        break;
                    case "unlock":
                        if (current?.Session != op.Session || op.Session is null)
                        {
                            error = $"failed to unlock key \"{op.Key}\", lock isn't held, or is held by another session";
                        }
                        else
                        {
                            var record = Write(op.Key, op.Value, op.Flags);
                            record.Session = null;
                            results.Add(record.WithoutValue());
                        }

                        break;
                    case "get":
                        if (current is null)
                        {
                            error = $"key \"{op.Key}\" doesn't exist";
                        }
                        else
                        {
                            results.Add(current.Clone());
                        }

                        break;
                    case "get-tree":
                        results.AddRange(KeysUnder(op.Key).Select(k => Get(k)!.Clone()));
                        break;
                    case "check-index":
                        if (current is null)
                        {
                            error = $"key \"{op.Key}\" doesn't exist";
                        }
                        else if (current.ModifyIndex != op.Index)
                        {
                            error = $"current modify index {current.ModifyIndex} != {op.Index}";
                        }
                        else
                        {
                            results.Add(current.WithoutValue());
                        }

                        break;
                    case "check-session":
                        if (current is null || current.Session != op.Session)
                        {
                            error = $"key \"{op.Key}\" is not locked by session \"{op.Session}\"";
                        }
                        else
                        {
                            results.Add(current.WithoutValue());
                        }

                        break;
                    case "check-not-exists":
                        if (current is not null)
                        {
                            error = $"key \"{op.Key}\" exists";
                        }

                        break;
                    case "delete":
                        if (current is not null)
                        {
                            overlay[op.Key] = null;
                            wrote = true;
                        }

                        break;
                    case "delete-tree":
                        foreach (var k in KeysUnder(op.Key))
                        {
                            overlay[k] = null;
                            wrote = true;
                        }

                        break;
                    case "delete-cas":
                        if (current is null || current.ModifyIndex != op.Index)
                        {
                            error = $"failed to delete key \"{op.Key}\", index is stale";
                        }
                        else
                        {
                            overlay[op.Key] = null;
                            wrote = true;
                        }

                        break;
                    default:
                        throw new EmulatorError(400, $"Unknown KV verb \"{op.Verb}\"");
                }

                if (error is not null)
                {
                    return new TxnOutcome(false, [], [new TxnFailure(i, error)]);
                }
            }

            if (wrote)
            {
                _index = newIndex;
                foreach (var (key, record) in overlay)
                {
                    if (record is null)
                    {
                        if (_kv.Remove(key))
                        {
                            _tombstones[key] = newIndex;
                        }
                    }
                    else
                    {
                        _kv[key] = record.Clone();
                        _tombstones.Remove(key);
                    }
                }

                _kvIndex = newIndex;
                Signal();
            }

            return new TxnOutcome(true, results, []);
        }
    }

    // ---- Sessions ----

    public SessionRecord CreateSession(string? name, TimeSpan? ttl, string behavior, TimeSpan lockDelay)
    {
        lock (_sync)
        {
            var index = NextIndex();
            var session = new SessionRecord
            {
                ID = Guid.NewGuid().ToString(),
                Name = name ?? string.Empty,
                TTL = ttl,
                Behavior = behavior,
                LockDelay = lockDelay,
                CreateIndex = index,
                ModifyIndex = index,
                ExpiresAt = ttl is { } t ? Time.GetUtcNow() + (t * 2) : null,
            };
            _sessions[session.ID] = session;
            _sessionIndex = index;
            Signal();
            return session;
        }
    }

    public SessionRecord? RenewSession(string id)
    {
        lock (_sync)
        {
            SweepLocked();
            if (!_sessions.TryGetValue(id, out var session))
            {
                return null;
            }

            if (session.TTL is { } ttl)
            {
                session.ExpiresAt = Time.GetUtcNow() + (ttl * 2);
            }

            return session;
        }
    }

    public SessionRecord? SessionInfo(string id)
    {
        lock (_sync)
        {
            SweepLocked();
            return _sessions.GetValueOrDefault(id);
        }
    }

    public IReadOnlyList<SessionRecord> Sessions()
    {
        lock (_sync)
        {
            SweepLocked();
            return _sessions.Values.ToArray();
        }
    }

    public ulong SessionIndex
    {
        get
        {
            lock (_sync)
            {
                return _sessionIndex;
            }
        }
    }

    public void DestroySession(string id)
    {
        lock (_sync)
        {
            InvalidateLocked(id);
        }
    }

    // ---- Agent services and checks ----

    public void RegisterService(ServiceRecord service, IReadOnlyList<CheckRecord> checks)
    {
        lock (_sync)
        {
            SweepLocked();
            foreach (var old in _checks.Values.Where(c => c.ServiceID == service.ID).Select(c => c.CheckID).ToArray())
            {
                _checks.Remove(old);
            }

            _services[service.ID] = service;
            var now = Time.GetUtcNow();
            foreach (var check in checks)
            {
                check.LastUpdate = now;
                check.CriticalSince = check.Status == "critical" ? now : null;
                _checks[check.CheckID] = check;
            }

            _healthIndex = NextIndex();
            Signal();
        }
    }

    public bool DeregisterService(string id)
    {
        lock (_sync)
        {
            SweepLocked();
            if (!_services.Remove(id))
            {
                return false;
            }

            foreach (var check in _checks.Values.Where(c => c.ServiceID == id).Select(c => c.CheckID).ToArray())
            {
                _checks.Remove(check);
            }

            _healthIndex = NextIndex();
            Signal();
            return true;
        }
    }

    /// <summary>Sets a TTL check's status; false when the agent does not know the check.</summary>
    public bool UpdateCheck(string checkId, string status, string? output)
    {
        lock (_sync)
        {
            SweepLocked();
            if (!_checks.TryGetValue(checkId, out var check))
            {
                return false;
            }

            var now = Time.GetUtcNow();
            var changed = check.Status != status || check.Output != (output ?? string.Empty);
            check.LastUpdate = now;
            if (status == "critical")
            {
                check.CriticalSince ??= now;
            }
            else
            {
                check.CriticalSince = null;
            }

            check.Status = status;
            check.Output = output ?? string.Empty;
            if (changed)
            {
                _healthIndex = NextIndex();
                Signal();
            }

            return true;
        }
    }

    public (IReadOnlyList<ServiceRecord> Services, IReadOnlyList<CheckRecord> Checks, ulong Index) Health()
    {
        lock (_sync)
        {
            SweepLocked();
            return (_services.Values.Select(s => s.Clone()).ToArray(), _checks.Values.Select(c => c.Clone()).ToArray(), _healthIndex);
        }
    }

    public ulong HealthIndex
    {
        get
        {
            lock (_sync)
            {
                SweepLocked();
                return _healthIndex;
            }
        }
    }

    /// <summary>What a restarted agent does: forget every service and check registered with it.</summary>
    public void ForgetAgentRegistrations()
    {
        lock (_sync)
        {
            _services.Clear();
            _checks.Clear();
            _healthIndex = NextIndex();
            Signal();
        }
    }

    // ---- Blocking ----

    /// <summary>Waits until <paramref name="currentIndex"/> passes <paramref name="waitIndex"/> or the wait (plus jitter) ends.</summary>
    public async Task WaitForChangeAsync(Func<ulong> currentIndex, ulong waitIndex, TimeSpan wait, CancellationToken cancellationToken)
    {
        var jitter = TimeSpan.FromTicks((long)(Random.Shared.NextDouble() * (wait.Ticks / 16.0)));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(wait + jitter);
        while (true)
        {
            Task changed;
            lock (_sync)
            {
                changed = _changed.Task;
            }

            if (currentIndex() > waitIndex)
            {
                return;
            }

            try
            {
                await changed.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    // ---- Internals ----

    private ulong NextIndex() => ++_index;

    private void Signal()
    {
        var previous = _changed;
        _changed = NewSignal();
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void Sweep()
    {
        lock (_sync)
        {
            SweepLocked();
        }
    }

    /// <summary>Expires sessions, turns overdue TTL checks critical, and reaps services critical for too long.</summary>
    private void SweepLocked()
    {
        var now = Time.GetUtcNow();
        foreach (var expired in _sessions.Values.Where(s => s.ExpiresAt is { } at && at <= now).Select(s => s.ID).ToArray())
        {
            InvalidateLocked(expired);
        }

        var healthChanged = false;
        foreach (var check in _checks.Values)
        {
            if (check.TTL is { } ttl && check.Status != "critical" && check.LastUpdate + ttl <= now)
            {
                check.Status = "critical";
                check.Output = "TTL expired";
                check.CriticalSince = check.LastUpdate + ttl;
                healthChanged = true;
            }
        }

        foreach (var check in _checks.Values.ToArray())
        {
            if (check.ServiceID is { } serviceId && check.DeregisterCriticalServiceAfter is { } after
                && check.CriticalSince is { } since && since + after <= now && _services.Remove(serviceId))
            {
                foreach (var owned in _checks.Values.Where(c => c.ServiceID == serviceId).Select(c => c.CheckID).ToArray())
                {
                    _checks.Remove(owned);
                }

                healthChanged = true;
            }
        }

        if (healthChanged)
        {
            _healthIndex = NextIndex();
            Signal();
        }
    }

    private void InvalidateLocked(string id)
    {
        if (!_sessions.Remove(id, out var session))
        {
            return;
        }

        var index = NextIndex();
        var now = Time.GetUtcNow();
        foreach (var record in _kv.Values.Where(r => r.Session == id).ToArray())
        {
            if (session.LockDelay > TimeSpan.Zero)
            {
                _lockDelays[record.Key] = now + session.LockDelay;
            }

            if (session.Behavior == "delete")
            {
                _kv.Remove(record.Key);
                _tombstones[record.Key] = index;
            }
            else
            {
                record.Session = null;
                record.ModifyIndex = index;
            }

            _kvIndex = index;
        }

        _sessionIndex = index;
        Signal();
    }
}

public sealed class KvRecord
{
    public required string Key { get; init; }

    public byte[] Value { get; set; } = [];

    public ulong Flags { get; set; }

    public ulong CreateIndex { get; init; }

    public ulong ModifyIndex { get; set; }

    public ulong LockIndex { get; set; }

    public string? Session { get; set; }

    public KvRecord Clone() => (KvRecord)MemberwiseClone();

    public KvRecord WithoutValue()
    {
        var copy = Clone();
        copy.Value = null!;
        return copy;
    }
}

public sealed class SessionRecord
{
    public required string ID { get; init; }

    public string Name { get; init; } = string.Empty;

    public TimeSpan? TTL { get; init; }

    public required string Behavior { get; init; }

    public TimeSpan LockDelay { get; init; }

    public ulong CreateIndex { get; init; }

    public ulong ModifyIndex { get; init; }

    public DateTimeOffset? ExpiresAt { get; set; }
}

public sealed class ServiceRecord
{
    public required string ID { get; init; }

    public required string Service { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    public string Address { get; init; } = string.Empty;

    public int Port { get; init; }

    public IReadOnlyDictionary<string, string> Meta { get; init; } = new Dictionary<string, string>();

    public ServiceRecord Clone() => (ServiceRecord)MemberwiseClone();
}

public sealed class CheckRecord
{
    public required string CheckID { get; init; }

    public string Name { get; init; } = string.Empty;

    public string Status { get; set; } = "critical";

    public string Output { get; set; } = string.Empty;

    public string? ServiceID { get; init; }

    public string? ServiceName { get; init; }

    public TimeSpan? TTL { get; init; }

    public TimeSpan? DeregisterCriticalServiceAfter { get; init; }

    public DateTimeOffset LastUpdate { get; set; }

    public DateTimeOffset? CriticalSince { get; set; }

    public CheckRecord Clone() => (CheckRecord)MemberwiseClone();
}

public sealed record TxnOperation(string Verb, string Key, byte[]? Value, ulong Flags, ulong Index, string? Session);

public sealed record TxnFailure(int OpIndex, string What);

public sealed record TxnOutcome(bool Committed, IReadOnlyList<KvRecord> Results, IReadOnlyList<TxnFailure> Errors);

/// <summary>An error the emulated API answers with a status code and Consul's plain-text message.</summary>
public sealed class EmulatorError(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

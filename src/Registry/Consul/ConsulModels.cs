using System.Text.Json.Serialization;

namespace Carml.Orleans.Registry.Consul;

/// <summary>One key as <c>/v1/kv</c> returns it.</summary>
public sealed record KvPair
{
    public required string Key { get; init; }

    public byte[]? Value { get; init; }

    public ulong Flags { get; init; }

    public ulong CreateIndex { get; init; }

    public ulong ModifyIndex { get; init; }

    public ulong LockIndex { get; init; }

    public string? Session { get; init; }
}

/// <summary>A read's value with the <c>X-Consul-Index</c> it was served at (the index a blocking query waits past).</summary>
public sealed record ConsulQueryResult<T>(T Value, ulong Index);

/// <summary>Blocking-query parameters: wait until the index passes <see cref="WaitIndex"/>, at most <see cref="WaitTime"/>.</summary>
public sealed record ConsulQuery(ulong WaitIndex, TimeSpan WaitTime);

/// <summary>Options of a KV write: <c>cas</c>, <c>flags</c>, <c>acquire</c>, <c>release</c>.</summary>
public sealed record KvWriteOptions
{
    /// <summary>Check-and-set: write only if the key's ModifyIndex equals this; 0 = only if the key does not exist.</summary>
    public ulong? Cas { get; init; }

    public ulong? Flags { get; init; }

    /// <summary>Session that acquires the key's lock with this write.</summary>
    public string? Acquire { get; init; }

    /// <summary>Session that releases the key's lock with this write.</summary>
    public string? Release { get; init; }
}

/// <summary>The KV verbs of <c>/v1/txn</c>.</summary>
public static class TxnVerbs
{
    public const string Set = "set";
    public const string Cas = "cas";
    public const string Lock = "lock";
    public const string Unlock = "unlock";
    public const string Get = "get";
    public const string GetTree = "get-tree";
    public const string CheckIndex = "check-index";
    public const string CheckSession = "check-session";
    public const string CheckNotExists = "check-not-exists";
    public const string Delete = "delete";
    public const string DeleteTree = "delete-tree";
    public const string DeleteCas = "delete-cas";
}

/// <summary>One KV operation of a transaction.</summary>
public sealed record TxnKvOp
{
    public required string Verb { get; init; }

    public required string Key { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public byte[]? Value { get; init; }

    public ulong Flags { get; init; }

    public ulong Index { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Session { get; init; }

    public static TxnKvOp Set(string key, byte[] value) => new() { Verb = TxnVerbs.Set, Key = key, Value = value };

    public static TxnKvOp CheckAndSet(string key, byte[] value, ulong index) => new() { Verb = TxnVerbs.Cas, Key = key, Value = value, Index = index };

    public static TxnKvOp Get(string key) => new() { Verb = TxnVerbs.Get, Key = key };

    public static TxnKvOp Delete(string key) => new() { Verb = TxnVerbs.Delete, Key = key };

    public static TxnKvOp DeleteTree(string prefix) => new() { Verb = TxnVerbs.DeleteTree, Key = prefix };

    public static TxnKvOp DeleteIfIndex(string key, ulong index) => new() { Verb = TxnVerbs.DeleteCas, Key = key, Index = index };

    public static TxnKvOp CheckIndex(string key, ulong index) => new() { Verb = TxnVerbs.CheckIndex, Key = key, Index = index };

    public static TxnKvOp CheckNotExists(string key) => new() { Verb = TxnVerbs.CheckNotExists, Key = key };
}

/// <summary>The outcome of <c>/v1/txn</c>: applied (200) with its results, or rolled back (409) with the errors.</summary>
public sealed record TxnResult(bool Committed, IReadOnlyList<KvPair> Results, IReadOnlyList<TxnError> Errors);

public sealed record TxnError(int OpIndex, string What);

/// <summary>What happens to a session's locks when it is invalidated.</summary>
public static class SessionBehaviors
{
    public const string Release = "release";
    public const string Delete = "delete";
}

/// <summary>Body of <c>/v1/session/create</c>.</summary>
public sealed record SessionCreateRequest
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; init; }

    /// <summary>Consul accepts 10s to 24h; the session is invalidated once it is not renewed for (up to twice) this long.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? TTL { get; init; }

    public string Behavior { get; init; } = SessionBehaviors.Release;

    /// <summary>How long a lock held by an invalidated session cannot be re-acquired ("0s" to disable; Consul's default is 15s).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? LockDelay { get; init; }

    /// <summary>Health checks tied to the session; an empty list ties it to none (only the TTL).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? NodeChecks { get; init; }
}

/// <summary>A session as <c>/v1/session/info</c> returns it.</summary>
public sealed record SessionEntry
{
    public required string ID { get; init; }

    public string? Name { get; init; }

    public string? Node { get; init; }

    public string? TTL { get; init; }

    public string? Behavior { get; init; }

    public ulong CreateIndex { get; init; }

    public ulong ModifyIndex { get; init; }
}

/// <summary>Body of <c>/v1/agent/service/register</c>.</summary>
public sealed record AgentServiceRegistration
{
    public required string ID { get; init; }

    public required string Name { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    public string? Address { get; init; }

    public int Port { get; init; }

    public IReadOnlyDictionary<string, string> Meta { get; init; } = new Dictionary<string, string>();

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public AgentServiceCheck? Check { get; init; }
}

/// <summary>A check registered with a service; only TTL checks are used here.</summary>
public sealed record AgentServiceCheck
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? CheckID { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? TTL { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Status { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? DeregisterCriticalServiceAfter { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Notes { get; init; }
}

/// <summary>Check states.</summary>
public static class CheckStatuses
{
    public const string Passing = "passing";
    public const string Warning = "warning";
    public const string Critical = "critical";
}

/// <summary>One entry of <c>/v1/health/service/:name</c>.</summary>
public sealed record ServiceHealthEntry
{
    public HealthNode? Node { get; init; }

    public required HealthService Service { get; init; }

    public IReadOnlyList<HealthCheck> Checks { get; init; } = [];
}

public sealed record HealthNode
{
    public string? Node { get; init; }

    public string? Address { get; init; }

    public string? Datacenter { get; init; }
}

public sealed record HealthService
{
    public required string ID { get; init; }

    public required string Service { get; init; }

    public IReadOnlyList<string>? Tags { get; init; }

    public string? Address { get; init; }

    public int Port { get; init; }

    public IReadOnlyDictionary<string, string>? Meta { get; init; }
}

public sealed record HealthCheck
{
    public string? CheckID { get; init; }

    public string? Name { get; init; }

    public string? Status { get; init; }

    public string? Output { get; init; }

    public string? ServiceID { get; init; }
}

/// <summary>Consul durations are Go durations ("15s", "1m30s", "250ms").</summary>
public static class ConsulDuration
{
    public static string Format(TimeSpan value) =>
        value.TotalMilliseconds % 1000 == 0
            ? $"{(long)value.TotalSeconds}s"
            : $"{(long)value.TotalMilliseconds}ms";
}

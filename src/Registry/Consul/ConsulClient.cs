using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Registry.Consul;

/// <summary>
/// A thin typed client of the Consul HTTP API: <c>/v1/kv</c>, <c>/v1/txn</c>, <c>/v1/session</c>, <c>/v1/agent</c>,
/// <c>/v1/health</c> and <c>/v1/status</c>. Sends the ACL token as <c>X-Consul-Token</c>, retries transient failures with
/// exponential backoff, never retries a 403, and turns every other failure into a <see cref="ConsulException"/>.
/// </summary>
public sealed partial class ConsulClient
{
    internal static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true };

    private const string TokenHeader = "X-Consul-Token";
    private const string IndexHeader = "X-Consul-Index";

    private readonly HttpClient _http;
    private readonly ConsulOptions _options;
    private readonly ILogger<ConsulClient> _logger;
    private readonly TimeProvider _time;

    public ConsulClient(HttpClient http, IOptions<ConsulOptions> options, ILogger<ConsulClient> logger, TimeProvider? time = null)
    {
        _options = options.Value;
        _http = http;
        _http.BaseAddress ??= _options.BaseAddress;
        _http.Timeout = Timeout.InfiniteTimeSpan;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The agent this client talks to.</summary>
    public Uri Address => _http.BaseAddress!;

    public ConsulOptions Options => _options;

    // ---- KV ----

    /// <summary>Reads one key; the value is null when the key does not exist.</summary>
    public async Task<ConsulQueryResult<KvPair?>> KvGetAsync(string key, ConsulQuery? query = null, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Get, Url("v1/kv/" + EscapeKey(key), query), null, query, cancellationToken).ConfigureAwait(false);
        if (response.Status == HttpStatusCode.NotFound)
        {
            return new(null, response.Index);
        }

        response.EnsureSuccess();
        var pairs = response.Read<KvPair[]>() ?? [];
        return new(pairs.FirstOrDefault(), response.Index);
    }

    /// <summary>Reads every key under <paramref name="prefix"/> (<c>?recurse</c>), in key order; empty when none.</summary>
    public async Task<ConsulQueryResult<IReadOnlyList<KvPair>>> KvListAsync(string prefix, ConsulQuery? query = null, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Get, Url("v1/kv/" + EscapeKey(prefix), query, "recurse"), null, query, cancellationToken).ConfigureAwait(false);
        if (response.Status == HttpStatusCode.NotFound)
        {
            return new([], response.Index);
        }

        response.EnsureSuccess();
        return new(response.Read<KvPair[]>() ?? [], response.Index);
    }

    /// <summary>Lists key names under <paramref name="prefix"/> (<c>?keys</c>), folded at <paramref name="separator"/> when given.</summary>
    public async Task<ConsulQueryResult<IReadOnlyList<string>>> KvKeysAsync(string prefix, string? separator = null, ConsulQuery? query = null, CancellationToken cancellationToken = default)
    {
        var parameters = separator is null ? new[] { "keys" } : ["keys", "separator=" + Uri.EscapeDataString(separator)];
        var response = await SendAsync(HttpMethod.Get, Url("v1/kv/" + EscapeKey(prefix), query, parameters), null, query, cancellationToken).ConfigureAwait(false);
        if (response.Status == HttpStatusCode.NotFound)
        {
            return new([], response.Index);
        }

        response.EnsureSuccess();
        return new(response.Read<string[]>() ?? [], response.Index);
    }

    /// <summary>Writes a key; false when a <c>cas</c> did not match or an <c>acquire</c>/<c>release</c> was refused.</summary>
    public async Task<bool> KvPutAsync(string key, byte[] value, KvWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        var parameters = new List<string>();
        if (options?.Cas is { } cas)
        {
            parameters.Add("cas=" + cas.ToString(CultureInfo.InvariantCulture));
        }

        if (options?.Flags is { } flags)
        {
            parameters.Add("flags=" + flags.ToString(CultureInfo.InvariantCulture));
        }

        if (options?.Acquire is { } acquire)
        {
            parameters.Add("acquire=" + Uri.EscapeDataString(acquire));
        }

        if (options?.Release is { } release)
        {
            parameters.Add("release=" + Uri.EscapeDataString(release));
        }

        var response = await SendAsync(HttpMethod.Put, Url("v1/kv/" + EscapeKey(key), null, [.. parameters]), value, null, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccess();
        return response.ReadBoolean();
    }

    /// <summary>Deletes a key, or every key under a prefix; false when a <c>cas</c> did not match.</summary>
    public async Task<bool> KvDeleteAsync(string key, bool recurse = false, ulong? cas = null, CancellationToken cancellationToken = default)
    {
        var parameters = new List<string>();
        if (recurse)
        {
            parameters.Add("recurse");
        }

        if (cas is { } index)
        {
            parameters.Add("cas=" + index.ToString(CultureInfo.InvariantCulture));
        }

        var response = await SendAsync(HttpMethod.Delete, Url("v1/kv/" + EscapeKey(key), null, [.. parameters]), null, null, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccess();
        return response.ReadBoolean();
    }

    // ---- Transactions ----

    /// <summary>
    /// Runs KV operations atomically (<c>/v1/txn</c>, at most 64). A 409 means Consul rolled every operation back: that is
    /// a result with <see cref="TxnResult.Committed"/> false, not an exception.
    /// </summary>
    public async Task<TxnResult> TxnAsync(IReadOnlyList<TxnKvOp> operations, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(operations);
        var body = JsonSerializer.SerializeToUtf8Bytes(operations.Select(op => new TxnOpEnvelope(op)).ToArray(), Json);
        var response = await SendAsync(HttpMethod.Put, Url("v1/txn", null), body, null, cancellationToken).ConfigureAwait(false);
        if (response.Status is HttpStatusCode.OK or HttpStatusCode.Conflict)
        {
            var result = response.Read<TxnResponse>();
            var results = result?.Results?.Select(r => r.KV).OfType<KvPair>().ToArray() ?? [];
            var errors = result?.Errors ?? [];
            return new TxnResult(response.Status == HttpStatusCode.OK, results, errors);
        }

        response.EnsureSuccess();
        throw new ConsulException($"Consul answered /v1/txn with {(int)response.Status}.", response.Status);
    }

    // ---- Sessions ----

    public async Task<string> SessionCreateAsync(SessionCreateRequest request, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Put, Url("v1/session/create", null), JsonSerializer.SerializeToUtf8Bytes(request, Json), null, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccess();
        return response.Read<SessionCreated>()?.ID ?? throw new ConsulException("Consul created a session but returned no ID.");
    }

    /// <summary>Renews a session's TTL; null when the session no longer exists (it expired or was destroyed).</summary>
    public async Task<SessionEntry?> SessionRenewAsync(string id, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Put, Url("v1/session/renew/" + Uri.EscapeDataString(id), null), null, null, cancellationToken).ConfigureAwait(false);
        if (response.Status == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccess();
        return response.Read<SessionEntry[]>()?.FirstOrDefault();
    }

    public async Task<bool> SessionDestroyAsync(string id, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Put, Url("v1/session/destroy/" + Uri.EscapeDataString(id), null), null, null, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccess();
        return response.ReadBoolean();
    }

    /// <summary>A session's details; null when it does not exist.</summary>
    public async Task<SessionEntry?> SessionInfoAsync(string id, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Get, Url("v1/session/info/" + Uri.EscapeDataString(id), null), null, null, cancellationToken).ConfigureAwait(false);
        if (response.Status == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccess();
        return response.Read<SessionEntry[]>()?.FirstOrDefault();
    }

    // ---- Agent and catalog ----

    public async Task AgentServiceRegisterAsync(AgentServiceRegistration registration, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Put, Url("v1/agent/service/register", null), JsonSerializer.SerializeToUtf8Bytes(registration, Json), null, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccess();
    }

    /// <summary>Removes a service from the local agent; false when the agent does not know it.</summary>
    public async Task<bool> AgentServiceDeregisterAsync(string serviceId, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Put, Url("v1/agent/service/deregister/" + Uri.EscapeDataString(serviceId), null), null, null, cancellationToken).ConfigureAwait(false);
        if (response.Status == HttpStatusCode.NotFound)
        {
            return false;
        }

        response.EnsureSuccess();
        return true;
    }

    /// <summary>
    /// Sets a TTL check's state (<c>/v1/agent/check/pass|warn|fail</c>). False when the agent does not know the check —
    /// a restarted agent forgets registrations — so the caller registers again.
    /// </summary>
    public async Task<bool> AgentCheckUpdateAsync(string checkId, string status, string? note = null, CancellationToken cancellationToken = default)
    {
        var verb = status switch
        {
            CheckStatuses.Passing => "pass",
            CheckStatuses.Warning => "warn",
            CheckStatuses.Critical => "fail",
            _ => throw new ArgumentOutOfRangeException(nameof(status), status, "A check status is passing, warning or critical."),
        };
        var parameters = note is null ? Array.Empty<string>() : ["note=" + Uri.EscapeDataString(note)];
        var response = await SendAsync(HttpMethod.Put, Url($"v1/agent/check/{verb}/" + Uri.EscapeDataString(checkId), null, parameters), null, null, cancellationToken).ConfigureAwait(false);
        if (response.Status == HttpStatusCode.NotFound
            || (response.Status == HttpStatusCode.InternalServerError && response.Text.Contains("Unknown check", StringComparison.OrdinalIgnoreCase)))
        {
            return false;
        }

        response.EnsureSuccess();
        return true;
    }

    /// <summary>The instances of a service with their checks; only those whose checks all pass when <paramref name="passingOnly"/>.</summary>
    public async Task<ConsulQueryResult<IReadOnlyList<ServiceHealthEntry>>> HealthServiceAsync(string service, bool passingOnly, ConsulQuery? query = null, CancellationToken cancellationToken = default)
    {
        var parameters = passingOnly ? new[] { "passing" } : [];
        var response = await SendAsync(HttpMethod.Get, Url("v1/health/service/" + Uri.EscapeDataString(service), query, parameters), null, query, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccess();
        return new(response.Read<ServiceHealthEntry[]>() ?? [], response.Index);
    }

    /// <summary>The Raft leader's address; an empty string when the cluster has none.</summary>
    public async Task<string> StatusLeaderAsync(CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Get, Url("v1/status/leader", null), null, null, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccess();
        return response.Read<string>() ?? string.Empty;
    }

    // ---- Blocking queries ----

    /// <summary>
    /// Runs a blocking query in a loop and yields each result whose index moved: the first result at once, then one per
    /// change. The index is reset when it goes backwards and never used as 0 after the first read; iterations are spaced at
    /// least <see cref="ConsulOptions.MinimumWatchInterval"/>; transient failures back off and retry.
    /// </summary>
    public async IAsyncEnumerable<ConsulQueryResult<T>> WatchAsync<T>(
        Func<ConsulQuery?, CancellationToken, Task<ConsulQueryResult<T>>> query,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ulong index = 0;
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var started = _time.GetTimestamp();
            ConsulQueryResult<T> result;
            try
            {
                result = await query(index == 0 ? null : new ConsulQuery(index, _options.BlockingWait), cancellationToken).ConfigureAwait(false);
                failures = 0;
            }
            catch (ConsulUnavailableException e) when (!cancellationToken.IsCancellationRequested)
            {
                failures++;
                LogWatchFailed(_logger, e, failures);
                await Task.Delay(Backoff(failures), _time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (result.Index < index)
            {
                // The index went backwards (a snapshot restore, a new leader with older data): start over.
                index = 0;
                yield return result;
            }
            else if (result.Index > index || index == 0)
            {
                index = Math.Max(result.Index, 1);
                yield return result;
            }

            var elapsed = _time.GetElapsedTime(started);
            if (elapsed < _options.MinimumWatchInterval)
            {
                await Task.Delay(_options.MinimumWatchInterval - elapsed, _time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    // ---- Plumbing ----

    private TimeSpan Backoff(int attempt)
    {
        var delay = _options.RetryDelay * Math.Pow(2, Math.Min(attempt - 1, 6));
        return delay > TimeSpan.FromSeconds(10) ? TimeSpan.FromSeconds(10) : delay;
    }

    private string Url(string path, ConsulQuery? query, params string[] parameters)
    {
        var all = new List<string>(parameters);
        if (!string.IsNullOrEmpty(_options.Datacenter))
        {
            all.Add("dc=" + Uri.EscapeDataString(_options.Datacenter));
        }

        if (query is not null)
        {
            all.Add("index=" + query.WaitIndex.ToString(CultureInfo.InvariantCulture));
            all.Add("wait=" + ConsulDuration.Format(query.WaitTime));
        }

        return all.Count == 0 ? path : path + "?" + string.Join('&', all);
    }

    /// <summary>Escapes each segment of a key for the URL path, keeping the slashes (and a trailing one).</summary>
    internal static string EscapeKey(string key) => string.Join('/', key.Split('/').Select(Uri.EscapeDataString));

    private async Task<ConsulResponse> SendAsync(HttpMethod method, string pathAndQuery, byte[]? body, ConsulQuery? blocking, CancellationToken cancellationToken)
    {
        var limit = _options.RequestTimeout;
        if (blocking is not null)
        {
            // Consul adds up to wait/16 of jitter to a blocking query.
            limit += blocking.WaitTime + (blocking.WaitTime / 16);
        }

        for (var attempt = 1; ; attempt++)
        {
            string failure;
            Exception? error = null;
            using var request = new HttpRequestMessage(method, pathAndQuery);
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            }

            if (!string.IsNullOrEmpty(_options.Token))
            {
                request.Headers.TryAddWithoutValidation(TokenHeader, _options.Token);
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(limit);
            try
            {
                using var response = await _http.SendAsync(request, timeout.Token).ConfigureAwait(false);
                var bytes = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
                var index = response.Headers.TryGetValues(IndexHeader, out var values)
                    && ulong.TryParse(values.FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : 0;
                var result = new ConsulResponse(method, StripQuery(pathAndQuery), response.StatusCode, bytes, index);
                if (response.StatusCode == HttpStatusCode.Forbidden)
                {
                    throw AclError(result);
                }

                if (!IsTransient(result))
                {
                    return result;
                }

                failure = $"{(int)result.Status} {Shorten(result.Text)}";
            }
            catch (HttpRequestException e)
            {
                failure = e.Message;
                error = e;
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                failure = $"no answer within {limit.TotalSeconds:0.#} s";
                error = e;
            }

            if (attempt > _options.MaxRetries)
            {
                throw new ConsulUnavailableException(
                    $"Consul at {Address} is unreachable or failing ({method} {StripQuery(pathAndQuery)}: {failure}) after {attempt} attempts. " +
                    $"Check that the agent runs and that Carml:Consul:Address or {ConsulOptions.AddressVariable} points to it.", error);
            }

            var delay = Backoff(attempt);
            LogRetrying(_logger, method.Method, StripQuery(pathAndQuery), failure, attempt, delay.TotalMilliseconds);
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private ConsulAclException AclError(ConsulResponse response)
    {
        var tokenState = string.IsNullOrEmpty(_options.Token)
            ? $"no ACL token is configured (set Carml:Consul:Token or {ConsulOptions.TokenVariable})"
            : $"the configured ACL token (Carml:Consul:Token or {ConsulOptions.TokenVariable}) is unknown to Consul or its policy does not allow this";
        return new ConsulAclException(
            $"Consul refused {response.Method} {response.Path} with 403 \"{Shorten(response.Text)}\": {tokenState}. Fix the token or its policy; this is not retried.");
    }

    private static bool IsTransient(ConsulResponse response) => response.Status switch
    {
        HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout => true,
        HttpStatusCode.InternalServerError => response.Text.Contains("No cluster leader", StringComparison.OrdinalIgnoreCase)
            || response.Text.Contains("rpc error", StringComparison.OrdinalIgnoreCase)
            || response.Text.Contains("i/o timeout", StringComparison.OrdinalIgnoreCase),
        _ => false,
    };

    private static string StripQuery(string pathAndQuery)
    {
        var question = pathAndQuery.IndexOf('?', StringComparison.Ordinal);
        return "/" + (question < 0 ? pathAndQuery : pathAndQuery[..question]);
    }

    internal static string Shorten(string text) => text.Length <= 200 ? text.Trim() : text[..200].Trim() + "…";

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "Consul {Method} {Path} failed ({Failure}); retry {Attempt} in {DelayMs} ms")]
    private static partial void LogRetrying(ILogger logger, string method, string path, string failure, int attempt, double delayMs);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Warning, Message = "A Consul watch failed {Failures} time(s) in a row; backing off")]
    private static partial void LogWatchFailed(ILogger logger, Exception exception, int failures);

    private sealed record TxnOpEnvelope(TxnKvOp KV);

    private sealed record TxnResponse(TxnResultItem[]? Results, TxnError[]? Errors);

    private sealed record TxnResultItem(KvPair? KV);

    private sealed record SessionCreated(string ID);

    private sealed record ConsulResponse(HttpMethod Method, string Path, HttpStatusCode Status, byte[] Body, ulong Index)
    {
        public string Text => Encoding.UTF8.GetString(Body);

        public T? Read<T>()
        {
            if (Body.Length == 0)
            {
                return default;
            }

            try
            {
                return JsonSerializer.Deserialize<T>(Body, Json);
            }
            catch (JsonException e)
            {
                throw new ConsulException($"Consul answered {Method} {Path} with a body that is not the expected JSON: {Shorten(Text)}", Status, e);
            }
        }

        public bool ReadBoolean() => Text.Trim() switch
        {
            "true" => true,
            "false" => false,
            var other => throw new ConsulException($"Consul answered {Method} {Path} with '{Shorten(other)}' where true or false was expected.", Status),
        };

        public void EnsureSuccess()
        {
            if ((int)Status is < 200 or > 299)
            {
                throw new ConsulException($"Consul answered {Method} {Path} with {(int)Status}: {Shorten(Text)}", Status);
            }
        }
    }
}

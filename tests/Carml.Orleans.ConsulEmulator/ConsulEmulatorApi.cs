using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Features;

namespace Carml.Orleans.ConsulEmulator;

/// <summary>The emulated HTTP endpoints, answering as Consul does (status codes, bodies, <c>X-Consul-Index</c>).</summary>
public static class ConsulEmulatorApi
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = null };

    public static void MapConsulEmulator(this WebApplication app, ConsulEmulatorState state, ConsulEmulatorOptions options, ConsulEmulatorFaults faults)
    {
        app.Use(async (context, next) =>
        {
            var path = context.Request.Path.Value ?? string.Empty;
            if (!path.StartsWith("/v1/", StringComparison.Ordinal))
            {
                await next(context);
                return;
            }

            if (faults.Unreachable)
            {
                // As close to "connection refused" as a running server gets: drop the connection without an answer.
                context.Abort();
                return;
            }

            state.CountRequest();
            if (options.AclToken is { } required)
            {
                var token = context.Request.Headers["X-Consul-Token"].FirstOrDefault()
                    ?? context.Request.Query["token"].FirstOrDefault()
                    ?? (context.Request.Headers.Authorization.FirstOrDefault() is { } auth && auth.StartsWith("Bearer ", StringComparison.Ordinal) ? auth[7..] : null);
                if (string.IsNullOrEmpty(token))
                {
                    await Text(context, 403, "Permission denied: anonymous token lacks permission");
                    return;
                }

                if (token != required)
                {
                    await Text(context, 403, "ACL not found");
                    return;
                }
            }

            if (context.Request.Query["dc"].FirstOrDefault() is { Length: > 0 } dc && dc != ConsulEmulatorState.Datacenter)
            {
                await Text(context, 500, $"No path to datacenter");
                return;
            }

            context.Response.Headers["X-Consul-KnownLeader"] = "true";
            context.Response.Headers["X-Consul-LastContact"] = "0";
            try
            {
                await next(context);
            }
            catch (EmulatorError e)
            {
                await Text(context, e.Status, e.Message);
            }
        });

        // ---- KV ----
        app.MapGet("/v1/kv/{**key}", async (HttpContext context, string? key) =>
        {
            key ??= string.Empty;
            var query = context.Request.Query;
            var recurse = query.ContainsKey("recurse");
            var keysOnly = query.ContainsKey("keys");
            var prefix = recurse || keysOnly;
            await BlockAsync(context, state, () => state.KvIndexFor(key, prefix));
            context.Response.Headers["X-Consul-Index"] = state.KvIndexFor(key, prefix).ToString(CultureInfo.InvariantCulture);
            var records = state.KvRead(key, prefix);
            if (keysOnly)
            {
                var separator = query["separator"].FirstOrDefault();
                var names = records.Select(r => r.Key).Select(k =>
                {
                    if (string.IsNullOrEmpty(separator))
                    {
                        return k;
                    }

                    var at = k.IndexOf(separator, key.Length, StringComparison.Ordinal);
                    return at < 0 ? k : k[..(at + separator.Length)];
                }).Distinct().ToArray();
                if (names.Length == 0)
                {
                    context.Response.StatusCode = 404;
                    return;
                }

                await JsonAsync(context, names);
                return;
            }

            if (records.Count == 0)
            {
                context.Response.StatusCode = 404;
                return;
            }

            if (query.ContainsKey("raw") && !prefix)
            {
                await context.Response.Body.WriteAsync(records[0].Value);
                return;
            }

            await JsonAsync(context, records.Select(ToJson).ToArray());
        });

        app.MapPut("/v1/kv/{**key}", async (HttpContext context, string? key) =>
        {
            if (string.IsNullOrEmpty(key))
            {
                await Text(context, 400, "Missing key name");
                return;
            }

            var query = context.Request.Query;
            var body = await ReadBodyAsync(context);
            if (body.Length > ConsulEmulatorState.MaxValueBytes)
            {
                await Text(context, 413, $"Request body(${body.Length} bytes) too large, max size: {ConsulEmulatorState.MaxValueBytes} bytes.");
                return;
            }

            var acquire = query["acquire"].FirstOrDefault();
            var release = query["release"].FirstOrDefault();
            if (acquire is not null && release is not null)
            {
                await Text(context, 400, "Conflicting flags: acquire and release");
                return;
            }

            if (!TryUlong(query["cas"].FirstOrDefault(), out var cas) || !TryUlong(query["flags"].FirstOrDefault(), out var flags))
            {
                await Text(context, 400, "Invalid cas or flags value");
                return;
            }

            var written = state.KvPut(key, body, flags, cas, acquire, release);
            await JsonAsync(context, written);
        });

        app.MapDelete("/v1/kv/{**key}", async (HttpContext context, string? key) =>
        {
            var query = context.Request.Query;
            var recurse = query.ContainsKey("recurse");
            if (string.IsNullOrEmpty(key) && !recurse)
            {
                await Text(context, 400, "Missing key name");
                return;
            }

            if (!TryUlong(query["cas"].FirstOrDefault(), out var cas))
            {
                await Text(context, 400, "Invalid cas value");
                return;
            }

            await JsonAsync(context, state.KvDelete(key ?? string.Empty, recurse, cas));
        });

        // ---- Transactions ----
        app.MapMethods("/v1/txn", ["PUT", "POST"], async (HttpContext context) =>
        {
            JsonArray? operations;
            try
            {
                operations = JsonNode.Parse(await ReadBodyAsync(context)) as JsonArray;
            }
            catch (JsonException e)
            {
                await Text(context, 400, "Failed to parse body: " + e.Message);
                return;
            }

            if (operations is null)
            {
                await Text(context, 400, "Failed to parse body: expected a list of operations");
                return;
            }

            if (operations.Count > ConsulEmulatorState.MaxTransactionOperations)
            {
                await Text(context, 413, $"Transaction contains too many operations ({operations.Count} > {ConsulEmulatorState.MaxTransactionOperations})");
                return;
            }

            var parsed = new List<TxnOperation>();
            foreach (var node in operations)
            {
                if (node?["KV"] is not JsonObject kv)
                {
                    await Text(context, 400, "The emulator supports only KV operations in transactions");
                    return;
                }

                parsed.Add(new TxnOperation(
                    kv["Verb"]?.GetValue<string>() ?? string.Empty,
                    kv["Key"]?.GetValue<string>() ?? string.Empty,
                    kv["Value"]?.GetValue<string>() is { } value ? Convert.FromBase64String(value) : null,
                    kv["Flags"]?.GetValue<ulong>() ?? 0,
                    kv["Index"]?.GetValue<ulong>() ?? 0,
                    kv["Session"]?.GetValue<string>()));
            }

            var outcome = state.Transaction(parsed);
            context.Response.StatusCode = outcome.Committed ? 200 : 409;
            await JsonAsync(context, new
            {
                Results = outcome.Committed ? outcome.Results.Select(r => new { KV = ToJson(r) }).ToArray() : null,
                Errors = outcome.Committed ? null : outcome.Errors,
            });
        });

        // ---- Sessions ----
        app.MapPut("/v1/session/create", async (HttpContext context) =>
        {
            var body = await ReadBodyAsync(context);
            var request = body.Length == 0 ? new JsonObject() : JsonNode.Parse(body) as JsonObject ?? new JsonObject();
            TimeSpan? ttl = null;
            if (request["TTL"]?.GetValue<string>() is { Length: > 0 } ttlText)
            {
                if (!GoDuration.TryParse(ttlText, out var parsedTtl) || (parsedTtl != TimeSpan.Zero && (parsedTtl < TimeSpan.FromSeconds(10) || parsedTtl > TimeSpan.FromHours(24))))
                {
                    await Text(context, 400, $"Invalid Session TTL '{ttlText}', must be between [10s=24h0m0s]");
                    return;
                }

                ttl = parsedTtl == TimeSpan.Zero ? null : parsedTtl;
            }

            var behavior = request["Behavior"]?.GetValue<string>() is { Length: > 0 } b ? b : "release";
            if (behavior is not ("release" or "delete"))
            {
                await Text(context, 400, $"Invalid Behavior setting '{behavior}'");
                return;
            }

            var lockDelay = TimeSpan.FromSeconds(15);
            if (request["LockDelay"] is { } delayNode)
            {
                var text = delayNode.GetValueKind() == JsonValueKind.Number ? delayNode.GetValue<long>().ToString(CultureInfo.InvariantCulture) + "ns" : delayNode.GetValue<string>();
                if (!GoDuration.TryParse(text, out lockDelay) || lockDelay > TimeSpan.FromSeconds(60))
                {
                    await Text(context, 400, $"Invalid LockDelay '{text}'");
                    return;
                }
            }

            var session = state.CreateSession(request["Name"]?.GetValue<string>(), ttl, behavior, lockDelay);
            await JsonAsync(context, new { session.ID });
        });

        app.MapPut("/v1/session/renew/{id}", async (HttpContext context, string id) =>
        {
            if (state.RenewSession(id) is not { } session)
            {
                await Text(context, 404, $"Session id '{id}' not found");
                return;
            }

            await JsonAsync(context, new[] { ToJson(session) });
        });

        app.MapPut("/v1/session/destroy/{id}", async (HttpContext context, string id) =>
        {
            state.DestroySession(id);
            await JsonAsync(context, true);
        });

        app.MapGet("/v1/session/info/{id}", async (HttpContext context, string id) =>
        {
            context.Response.Headers["X-Consul-Index"] = state.SessionIndex.ToString(CultureInfo.InvariantCulture);
            var session = state.SessionInfo(id);
            await JsonAsync(context, session is null ? Array.Empty<object>() : [ToJson(session)]);
        });

        app.MapGet("/v1/session/list", async (HttpContext context) =>
        {
            context.Response.Headers["X-Consul-Index"] = state.SessionIndex.ToString(CultureInfo.InvariantCulture);
            await JsonAsync(context, state.Sessions().Select(ToJson).ToArray());
        });

        // ---- Agent ----
        app.MapPut("/v1/agent/service/register", async (HttpContext context) =>
        {
            var request = JsonNode.Parse(await ReadBodyAsync(context)) as JsonObject;
            var name = request?["Name"]?.GetValue<string>();
            if (request is null || string.IsNullOrEmpty(name))
            {
                await Text(context, 400, "Missing service name");
                return;
            }

            var id = request["ID"]?.GetValue<string>() is { Length: > 0 } given ? given : name;
            var service = new ServiceRecord
            {
                ID = id,
                Service = name,
                Tags = request["Tags"]?.AsArray().Select(t => t!.GetValue<string>()).ToArray() ?? [],
                Address = request["Address"]?.GetValue<string>() ?? string.Empty,
                Port = request["Port"]?.GetValue<int>() ?? 0,
                Meta = request["Meta"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()) ?? new Dictionary<string, string>(),
            };
            var checkNodes = new List<JsonObject>();
            if (request["Check"] is JsonObject single)
            {
                checkNodes.Add(single);
            }

            if (request["Checks"] is JsonArray many)
            {
                checkNodes.AddRange(many.OfType<JsonObject>());
            }

            var checks = new List<CheckRecord>();
            for (var i = 0; i < checkNodes.Count; i++)
            {
                var node = checkNodes[i];
                if (node["TTL"]?.GetValue<string>() is not { } ttlText || !GoDuration.TryParse(ttlText, out var ttl))
                {
                    await Text(context, 400, "Invalid check: the emulator runs TTL checks only; TTL must be a duration");
                    return;
                }

                TimeSpan? deregisterAfter = null;
                if (node["DeregisterCriticalServiceAfter"]?.GetValue<string>() is { } afterText)
                {
                    if (!GoDuration.TryParse(afterText, out var after))
                    {
                        await Text(context, 400, $"Invalid DeregisterCriticalServiceAfter '{afterText}'");
                        return;
                    }

                    deregisterAfter = after;
                }

                var checkId = node["CheckID"]?.GetValue<string>() is { Length: > 0 } cid ? cid : checkNodes.Count == 1 ? "service:" + id : $"service:{id}:{i + 1}";
                checks.Add(new CheckRecord
                {
                    CheckID = checkId,
                    Name = node["Name"]?.GetValue<string>() ?? $"Service '{name}' check",
                    Status = node["Status"]?.GetValue<string>() is { Length: > 0 } status ? status : "critical",
                    ServiceID = id,
                    ServiceName = name,
                    TTL = ttl,
                    DeregisterCriticalServiceAfter = deregisterAfter,
                });
            }

            state.RegisterService(service, checks);
            context.Response.StatusCode = 200;
        });

        app.MapPut("/v1/agent/service/deregister/{id}", async (HttpContext context, string id) =>
        {
            if (!state.DeregisterService(id))
            {
                await Text(context, 404, $"Unknown service ID \"{id}\". Ensure that the service ID is passed, not the service name.");
            }
        });

        foreach (var (verb, status) in new[] { ("pass", "passing"), ("warn", "warning"), ("fail", "critical") })
        {
            app.MapPut($"/v1/agent/check/{verb}/{{id}}", async (HttpContext context, string id) =>
            {
                if (!state.UpdateCheck(id, status, context.Request.Query["note"].FirstOrDefault()))
                {
                    await Text(context, 404, $"Unknown check ID \"{id}\". Ensure that the check ID is passed, not the check name.");
                }
            });
        }

        app.MapPut("/v1/agent/check/update/{id}", async (HttpContext context, string id) =>
        {
            var request = JsonNode.Parse(await ReadBodyAsync(context)) as JsonObject;
            var status = request?["Status"]?.GetValue<string>();
            if (status is not ("passing" or "warning" or "critical"))
            {
                await Text(context, 400, $"Invalid check status: \"{status}\"");
                return;
            }

            if (!state.UpdateCheck(id, status, request?["Output"]?.GetValue<string>()))
            {
                await Text(context, 404, $"Unknown check ID \"{id}\". Ensure that the check ID is passed, not the check name.");
            }
        });

        app.MapGet("/v1/agent/services", async (HttpContext context) =>
            await JsonAsync(context, state.Health().Services.ToDictionary(s => s.ID, s => ToJson(s))));

        app.MapGet("/v1/agent/checks", async (HttpContext context) =>
            await JsonAsync(context, state.Health().Checks.ToDictionary(c => c.CheckID, c => ToJson(c))));

        // ---- Health and catalog ----
        app.MapGet("/v1/health/service/{name}", async (HttpContext context, string name) =>
        {
            await BlockAsync(context, state, () => state.HealthIndex);
            var (services, checks, index) = state.Health();
            context.Response.Headers["X-Consul-Index"] = index.ToString(CultureInfo.InvariantCulture);
            var passingOnly = context.Request.Query.ContainsKey("passing");
            var tag = context.Request.Query["tag"].FirstOrDefault();
            var entries = services
                .Where(s => s.Service == name && (tag is null || s.Tags.Contains(tag)))
                .Select(s => new { Service = s, Checks = checks.Where(c => c.ServiceID == s.ID).ToArray() })
                .Where(e => !passingOnly || e.Checks.All(c => c.Status == "passing"))
                .OrderBy(e => e.Service.ID, StringComparer.Ordinal)
                .Select(e => new
                {
                    Node = new { ID = "00000000-0000-0000-0000-000000000001", Node = ConsulEmulatorState.NodeName, Address = "127.0.0.1", Datacenter = ConsulEmulatorState.Datacenter },
                    Service = ToJson(e.Service),
                    Checks = new object[] { new { Node = ConsulEmulatorState.NodeName, CheckID = "serfHealth", Name = "Serf Health Status", Status = "passing", Output = "Agent alive and reachable", ServiceID = "", ServiceName = "" } }
                        .Concat(e.Checks.Select(ToJson)).ToArray(),
                })
                .ToArray();
            await JsonAsync(context, entries);
        });

        app.MapGet("/v1/catalog/services", async (HttpContext context) =>
        {
            var (services, _, index) = state.Health();
            context.Response.Headers["X-Consul-Index"] = index.ToString(CultureInfo.InvariantCulture);
            var catalog = new Dictionary<string, string[]> { ["consul"] = [] };
            foreach (var group in services.GroupBy(s => s.Service))
            {
                catalog[group.Key] = group.SelectMany(s => s.Tags).Distinct().ToArray();
            }

            await JsonAsync(context, catalog);
        });

        app.MapGet("/v1/status/leader", async (HttpContext context) => await JsonAsync(context, "127.0.0.1:8300"));
        app.MapGet("/v1/status/peers", async (HttpContext context) => await JsonAsync(context, new[] { "127.0.0.1:8300" }));
        app.MapGet("/v1/agent/self", async (HttpContext context) =>
            await JsonAsync(context, new { Config = new { Datacenter = ConsulEmulatorState.Datacenter, NodeName = ConsulEmulatorState.NodeName, Version = "emulator" } }));

        // ---- Test controls (not part of Consul's API) ----
        app.MapPost("/emulator/faults/unreachable", () => { faults.Unreachable = true; return Results.Ok(); });
        app.MapPost("/emulator/faults/clear", () => { faults.Unreachable = false; return Results.Ok(); });
        app.MapPost("/emulator/agent/restart", () => { state.ForgetAgentRegistrations(); return Results.Ok(); });
        app.MapGet("/emulator/requests", () => Results.Ok(state.RequestCount));
    }

    private static async Task BlockAsync(HttpContext context, ConsulEmulatorState state, Func<ulong> currentIndex)
    {
        var query = context.Request.Query;
        if (!TryUlong(query["index"].FirstOrDefault(), out var index) || index is null or 0)
        {
            return;
        }

        var wait = TimeSpan.FromMinutes(5);
        if (query["wait"].FirstOrDefault() is { } waitText && GoDuration.TryParse(waitText, out var parsed))
        {
            wait = parsed;
        }

        if (wait > TimeSpan.FromMinutes(10))
        {
            wait = TimeSpan.FromMinutes(10);
        }

        await state.WaitForChangeAsync(currentIndex, index.Value, wait, context.RequestAborted);
    }

    private static bool TryUlong(string? text, out ulong? value)
    {
        value = null;
        if (text is null)
        {
            return true;
        }

        if (ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
        {
            value = parsed;
            return true;
        }

        return false;
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext context)
    {
        context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize = null;
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        return buffer.ToArray();
    }

    private static Task JsonAsync<T>(HttpContext context, T value)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(value, Json), context.RequestAborted);
    }

    private static Task Text(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(message, Encoding.UTF8, context.RequestAborted);
    }

    private static object ToJson(KvRecord r) => new
    {
        r.LockIndex,
        r.Key,
        r.Flags,
        Value = r.Value is null ? null : Convert.ToBase64String(r.Value),
        r.CreateIndex,
        r.ModifyIndex,
        r.Session,
    };

    private static object ToJson(SessionRecord s) => new
    {
        s.ID,
        s.Name,
        Node = ConsulEmulatorState.NodeName,
        LockDelay = (long)s.LockDelay.TotalMilliseconds * 1_000_000,
        s.Behavior,
        TTL = s.TTL is { } ttl ? GoDuration.Format(ttl) : string.Empty,
        NodeChecks = Array.Empty<string>(),
        s.CreateIndex,
        s.ModifyIndex,
    };

    private static object ToJson(ServiceRecord s) => new { s.ID, s.Service, s.Tags, s.Address, s.Port, s.Meta };

    private static object ToJson(CheckRecord c) => new
    {
        Node = ConsulEmulatorState.NodeName,
        c.CheckID,
        c.Name,
        c.Status,
        c.Output,
        ServiceID = c.ServiceID ?? string.Empty,
        ServiceName = c.ServiceName ?? string.Empty,
        Type = "ttl",
    };
}

using System.Collections.Concurrent;
using System.Net;
using Carml.Orleans.Gateway;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Carml.Orleans.Tests.Observability;

/// <summary>Every log line the process writes, at every level, with its scopes (trace and span ids).</summary>
public sealed class CapturedLogs : ILoggerProvider, ISupportExternalScope
{
    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

    public ConcurrentQueue<string> Lines { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var scopes = new List<string>();
            owner._scopes.ForEachScope((scope, list) =>
            {
                list.Add(scope?.ToString() ?? string.Empty);
                if (scope is IEnumerable<KeyValuePair<string, object?>> pairs)
                {
                    list.AddRange(pairs.Select(p => $"{p.Key}={p.Value}"));
                }
            }, scopes);
            var values = state is IEnumerable<KeyValuePair<string, object?>> properties ? string.Join(" ", properties.Select(p => $"{p.Key}={p.Value}")) : string.Empty;
            owner.Lines.Enqueue($"{logLevel} {category} [{string.Join(" | ", scopes)}] {formatter(state, exception)} {values} {exception}");
        }
    }
}

/// <summary>
/// Secrets never reach the logs: a gateway configured with a Consul token, a PostgreSQL password and API-key-like
/// settings logs everything at Trace level through start-up, requests carrying credentials, and shutdown.
/// Logs carry the trace and span ids of the request that wrote them.
/// </summary>
public sealed class LogTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Secrets_in_settings_and_request_headers_never_appear_in_logs_at_any_level()
    {
        var secrets = new[] { "consul-" + Guid.NewGuid().ToString("N"), "pg-" + Guid.NewGuid().ToString("N"), "key-" + Guid.NewGuid().ToString("N"), "bearer-" + Guid.NewGuid().ToString("N") };
        var logs = new CapturedLogs();
        using var data = new TempDirectory();
        var settings = new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Default"] = "Trace",
            ["Logging:LogLevel:Carml"] = "Trace",
            ["Logging:LogLevel:Microsoft"] = "Trace",
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Trace",
            ["Logging:LogLevel:Orleans"] = "Trace",
            ["Logging:LogLevel:Grpc"] = "Trace",
            ["Carml:Consul:Token"] = secrets[0],
            ["Carml:Postgres:ConnectionString"] = $"Host=127.0.0.1;Username=carml;Password={secrets[1]}",
            ["Carml:Auth:ApiKeys:0:Key"] = secrets[2],
            ["Carml:Runs:Record"] = "all",
        };
        await using (var gateway = await GatewayInstance.StartAsync(data.Path, settings, services => services.AddSingleton<ILoggerProvider>(logs)))
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/iris/infer")
            {
                Content = new StringContent(KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)), System.Text.Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("Authorization", "Bearer " + secrets[3]);
            request.Headers.Add("X-Api-Key", secrets[2]);
            request.Headers.Add("X-Consul-Token", secrets[0]);
            request.Headers.Add("Carml-Trace-Level", "full");
            using var infer = await gateway.Http.SendAsync(request, Ct);
            Assert.True(infer.StatusCode == HttpStatusCode.OK, await infer.Content.ReadAsStringAsync(Ct));
            Assert.Equal(HttpStatusCode.NotFound, (await gateway.Http.PostJsonAsync("/v2/models/nope/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)))).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await gateway.Http.PostJsonAsync("/v2/models/iris/infer", "{}")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await gateway.Http.GetAsync("/healthz", Ct)).StatusCode);
            var metadata = new Grpc.Core.Metadata { { "authorization", "Bearer " + secrets[3] }, { "x-api-key", secrets[2] }, { "carml-trace-level", "full" } };
            await gateway.Grpc.ModelInferAsync(KServeGrpcTests.Typed(TestModels.IrisRows.Take(1)), metadata, cancellationToken: Ct);
            Assert.Equal(HttpStatusCode.OK, (await gateway.Http.GetAsync("/api/models", Ct)).StatusCode);
        }

        Assert.True(logs.Lines.Count > 50, $"only {logs.Lines.Count} log lines were captured");
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(logs.Lines, line => line.Contains(secret, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Logs_written_while_serving_a_request_carry_its_trace_and_span_ids()
    {
        var logs = new CapturedLogs();
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(
            data.Path,
            new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Debug", ["Logging:LogLevel:Microsoft.AspNetCore"] = "Debug" },
            services => services.AddSingleton<ILoggerProvider>(logs));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/models");
        request.Headers.Add("Carml-Trace-Level", "application");

        using var response = await gateway.Http.SendAsync(request, Ct);

        var traceId = Assert.Single(response.Headers.GetValues("Carml-Trace-Id"));
        Assert.Contains(logs.Lines, line => line.Contains("TraceId=" + traceId, StringComparison.Ordinal) && line.Contains("SpanId=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_json_format_switches_the_console_to_json_lines_with_scopes()
    {
        using var data = new TempDirectory();
        await using var app = GatewayHost.Build([], builder =>
        {
            builder.Configuration["Carml:Logging:Format"] = "json";
            builder.Configuration["Carml:Silo:DataDirectory"] = data.Path;
        });

        var console = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>>().Value;
        var json = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.Extensions.Logging.Console.JsonConsoleFormatterOptions>>().Value;

        Assert.Equal(Microsoft.Extensions.Logging.Console.ConsoleFormatterNames.Json, console.FormatterName);
        Assert.True(json.IncludeScopes);
    }

    [Fact]
    public void An_unknown_log_format_is_refused_at_start()
    {
        var error = Assert.Throws<InvalidOperationException>(() => GatewayHost.Build([], builder =>
            builder.Configuration["Carml:Logging:Format"] = "xml"));

        Assert.Contains("Carml:Logging:Format 'xml'", error.Message);
    }
}

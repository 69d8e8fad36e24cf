using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Carml.Orleans.Gateway;
using Carml.Orleans.Gateway.Security;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Carml.Orleans.Tests.Security;

/// <summary>
/// A real gateway with authentication on: a bootstrap admin key from configuration, JWTs signed with a shared secret
/// (HS256) or an RSA key whose public half is in a PEM file, and API keys for a cast of users. Every log line it writes
/// is kept, so tests can prove that no secret reaches the logs.
/// </summary>
public sealed class SecuredGatewayFixture : IAsyncLifetime
{
    public const string Issuer = "https://idp.carml.test";
    public const string Audience = "carml-gateway";

    private readonly TempDirectory _data = new();
    private readonly RSA _rsa = RSA.Create(2048);
    private readonly List<HttpClient> _clients = [];
    private GatewayInstance? _gateway;

    public string AdminKey { get; } = ApiKeyFormat.Generate().Key;

    /// <summary>The HS256 secret (in configuration, as an operator would set it through the environment).</summary>
    public string JwtSecret { get; } = Convert.ToBase64String(RandomNumberGenerator.GetBytes(48));

    public RSA RsaKey => _rsa;

    public CapturedLogs Logs { get; } = new();

    public GatewayInstance Gateway => _gateway ?? throw new InvalidOperationException("The gateway has not started.");

    /// <summary>alice (org a, owner of test models), bob (org b, group ml), carol (org c), dave (org a).</summary>
    public Dictionary<string, string> Keys { get; } = new(StringComparer.Ordinal);

    public IDictionary<string, string?> Settings(string dataDirectory)
    {
        var pem = Path.Combine(dataDirectory, "jwt-public.pem");
        File.WriteAllText(pem, _rsa.ExportSubjectPublicKeyInfoPem());
        return new Dictionary<string, string?>
        {
            ["Carml:Auth:Enabled"] = "true",
            ["Carml:Auth:BootstrapAdminKey"] = AdminKey,
            ["Carml:Auth:Jwt:Issuer"] = Issuer,
            ["Carml:Auth:Jwt:Audience"] = Audience,
            ["Carml:Auth:Jwt:SigningKey"] = JwtSecret,
            ["Carml:Auth:Jwt:PublicKeyFile"] = pem,
            // Service discovery over gRPC for admins only, as an operator may choose.
            ["Carml:Auth:AdminPaths:0"] = "/dashboard",
            ["Carml:Auth:AdminPaths:1"] = "/grpc.reflection.v1alpha.ServerReflection",
            ["Carml:Runs:Record"] = "All",
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Debug",
            ["Logging:LogLevel:Carml"] = "Debug",
            ["Logging:LogLevel:Orleans"] = "Warning",
        };
    }

    public async ValueTask InitializeAsync()
    {
        _gateway = await GatewayInstance.StartAsync(_data.Path, Settings(_data.Path), services => services.AddSingleton<ILoggerProvider>(Logs));
        var store = Gateway.Services.GetRequiredService<ApiKeyStore>();
        var creator = new CarmlPrincipal("admin", null, [], Admin: true);
        foreach (var (user, org, groups) in new[] { ("alice", "a", Array.Empty<string>()), ("bob", "b", ["ml"]), ("carol", "c", []), ("dave", "a", []) })
        {
            Keys[user] = (await store.CreateAsync(new ApiKeyRequest(user, org, groups), creator)).Key;
        }
    }

    /// <summary>An HTTP client that sends <paramref name="key"/> as a bearer credential (none when null).</summary>
    public HttpClient Client(string? key)
    {
        var client = new HttpClient { BaseAddress = Gateway.Http.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        lock (_clients)
        {
            _clients.Add(client);
        }

        return client;
    }

    public HttpClient As(string user) => Client(user == "admin" ? AdminKey : user == "anonymous" ? null : Keys[user]);

    public static Metadata Bearer(string? credential) =>
        credential is null ? [] : new Metadata { { "authorization", "Bearer " + credential } };

    public Metadata GrpcAs(string user) => Bearer(user == "admin" ? AdminKey : user == "anonymous" ? null : Keys[user]);

    /// <summary>A JWT signed with the configured HS256 secret (or another key, to forge one).</summary>
    public string Jwt(string user, string? org = null, string[]? groups = null, string[]? roles = null,
        DateTime? expires = null, SigningCredentials? signing = null, string audience = Audience)
    {
        var now = DateTime.UtcNow;
        var exp = expires ?? now.AddMinutes(10);
        var claims = new Dictionary<string, object> { ["sub"] = user };
        if (org is not null)
        {
            claims["org"] = org;
        }

        if (groups is not null)
        {
            claims["groups"] = groups;
        }

        if (roles is not null)
        {
            claims["roles"] = roles;
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = audience,
            Claims = claims,
            IssuedAt = exp.AddMinutes(-20),
            NotBefore = exp.AddMinutes(-20),
            Expires = exp,
            SigningCredentials = signing ?? new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(JwtSecret)), SecurityAlgorithms.HmacSha256),
        });
    }

    public SigningCredentials RsaSigning => new(new RsaSecurityKey(_rsa), SecurityAlgorithms.RsaSha256);

    /// <summary>An unsigned token (<c>alg: none</c>) claiming to be an admin.</summary>
    public static string UnsignedJwt(string user)
    {
        static string Segment(string json) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json));
        var exp = DateTimeOffset.UtcNow.AddMinutes(10).ToUnixTimeSeconds();
        return Segment("""{"alg":"none","typ":"JWT"}""") + "." +
            Segment($$"""{"sub":"{{user}}","iss":"{{Issuer}}","aud":"{{Audience}}","exp":{{exp}},"roles":["admin"]}""") + ".";
    }

    public async ValueTask DisposeAsync()
    {
        lock (_clients)
        {
            _clients.ForEach(c => c.Dispose());
        }

        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        _rsa.Dispose();
        _data.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class SecuredGatewayCollection : ICollectionFixture<SecuredGatewayFixture>
{
    public const string Name = "secured-gateway";
}

/// <summary>Keeps every formatted log line (with its exception) a gateway writes.</summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyCollection<string> Lines => _lines;

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception}");
    }
}

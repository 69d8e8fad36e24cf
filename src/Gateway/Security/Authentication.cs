using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Carml.Orleans.Gateway.Security;

/// <summary>The authentication schemes: one entry point that forwards to the API key or the JWT handler.</summary>
public static class CarmlSchemes
{
    public const string Carml = "carml";
    public const string ApiKey = "carml-api-key";
    public const string Jwt = JwtBearerDefaults.AuthenticationScheme;
    public const string ApiKeyHeader = "X-Api-Key";

    /// <summary>
    /// The credential on a request: <c>X-Api-Key</c>, or <c>Authorization: Bearer</c> (an API key when it starts with
    /// <c>carml_</c>, else a JWT). gRPC metadata arrives as the same headers. Read once per request: the middleware, the
    /// scheme selector and the handlers all ask.
    /// </summary>
    public static RequestCredential Credential(HttpRequest request)
    {
        var items = request.HttpContext.Items;
        if (items.TryGetValue(typeof(RequestCredential), out var cached) && cached is RequestCredential known)
        {
            return known;
        }

        var credential = RequestCredential.Read(request);
        items[typeof(RequestCredential)] = credential;
        return credential;
    }
}

/// <summary>
/// A request's credential: an API key, a bearer token that is not an API key (a JWT, if anything), or an
/// <c>Authorization</c> header of another scheme (<see cref="OtherScheme"/>), which no handler accepts.
/// </summary>
public sealed record RequestCredential(string? ApiKey, string? Jwt, bool OtherScheme)
{
    private const string Bearer = "Bearer ";

    /// <summary>Anything that asks to be authenticated (and so fails when wrong, rather than counting as anonymous).</summary>
    public bool Present => ApiKey is not null || Jwt is not null || OtherScheme;

    internal static RequestCredential Read(HttpRequest request)
    {
        if (request.Headers[CarmlSchemes.ApiKeyHeader].FirstOrDefault() is { Length: > 0 } key)
        {
            return new(key.Trim(), null, false);
        }

        var authorization = request.Headers.Authorization.FirstOrDefault();
        if (authorization is null || !authorization.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
        {
            return new(null, null, authorization is not null);
        }

        var token = authorization[Bearer.Length..].Trim();
        return token.StartsWith(ApiKeyFormat.Prefix, StringComparison.Ordinal) ? new(token, null, false) : new(null, token, false);
    }
}

/// <summary>
/// Callers that already proved a JWT, by the exact token, until the token expires (at most five minutes): a client
/// sends the same token for many requests, and a signature check per request would cost more than the inference. A
/// changed byte is a different token and is validated in full; refused tokens are never kept.
/// </summary>
public sealed class JwtPrincipalCache(TimeProvider time)
{
    private const int Capacity = 10_000;
    private static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(5);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (CarmlPrincipal Principal, DateTimeOffset Until)> _entries = new(StringComparer.Ordinal);

    public bool TryGet(string token, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CarmlPrincipal? principal)
    {
        if (_entries.TryGetValue(token, out var entry) && entry.Until > time.GetUtcNow())
        {
            principal = entry.Principal;
            return true;
        }

        principal = null;
        return false;
    }

    public void Add(string token, CarmlPrincipal principal, DateTimeOffset? expires)
    {
        if (expires is not { } exp)
        {
            return;
        }

        if (_entries.Count >= Capacity)
        {
            _entries.Clear();
        }

        var cap = time.GetUtcNow() + MaxAge;
        _entries[token] = (principal, exp < cap ? exp : cap);
    }
}

/// <summary>Authenticates <c>carml_…</c> API keys against <see cref="ApiKeyStore"/>.</summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyStore keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var credential = CarmlSchemes.Credential(Request);
        if (credential.ApiKey is not { } key)
        {
            return credential.Present
                ? AuthenticateResult.Fail("The Authorization header is not 'Bearer <API key or JWT>' or no JWT issuer is configured.")
                : AuthenticateResult.NoResult();
        }

        var (principal, failure) = await keys.AuthenticateAsync(key);
        return principal is null
            ? AuthenticateResult.Fail(failure!)
            : AuthenticateResult.Success(new AuthenticationTicket(principal.ToClaimsPrincipal(), Scheme.Name));
    }
}

/// <summary>Configures JWT validation from <see cref="JwtOptions"/>: fixed issuer, audience and keys; signed tokens only.</summary>
public sealed class JwtBearerSetup(IOptions<AuthOptions> auth) : IConfigureNamedOptions<JwtBearerOptions>
{
    /// <summary>The algorithms accepted; <c>none</c> is never among them.</summary>
    public static readonly string[] Algorithms =
    [
        SecurityAlgorithms.HmacSha256, SecurityAlgorithms.HmacSha384, SecurityAlgorithms.HmacSha512,
        SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
        SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
    ];

    public void Configure(JwtBearerOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, JwtBearerOptions options)
    {
        if (name != CarmlSchemes.Jwt)
        {
            return;
        }

        var jwt = auth.Value.Jwt;
        options.MapInboundClaims = false;
        options.RequireHttpsMetadata = false;
        options.IncludeErrorDetails = false;
        options.TokenValidationParameters = new TokenValidationParameters
        {
            ValidIssuer = jwt.Issuer,
            ValidAudience = jwt.Audience,
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            IssuerSigningKeys = SigningKeys(jwt),
            ValidAlgorithms = Algorithms,
            ClockSkew = TimeSpan.FromSeconds(jwt.ClockSkewSeconds),
            NameClaimType = jwt.UserClaim,
        };
        options.Events = new JwtBearerEvents
        {
            OnTokenValidated = context =>
            {
                if (ToPrincipal(context.Principal!, jwt) is { } principal)
                {
                    context.Principal = principal.ToClaimsPrincipal();
                    context.Properties.ExpiresUtc = new DateTimeOffset(DateTime.SpecifyKind(context.SecurityToken.ValidTo, DateTimeKind.Utc));
                }
                else
                {
                    context.Fail($"The token has no '{jwt.UserClaim}' claim.");
                }

                return Task.CompletedTask;
            },
        };
    }

    /// <summary>Maps a validated token's claims to the caller: user, organization, groups, admin role.</summary>
    public static CarmlPrincipal? ToPrincipal(ClaimsPrincipal token, JwtOptions jwt)
    {
        if (token.FindFirst(jwt.UserClaim)?.Value is not { Length: > 0 } user || user == CarmlPrincipal.AnonymousUser)
        {
            return null;
        }

        var groups = Values(token, jwt.GroupsClaim);
        var roles = Values(token, jwt.RolesClaim);
        return new CarmlPrincipal(jwt.UserPrefix + user, token.FindFirst(jwt.OrganizationClaim)?.Value, groups, roles.Contains(jwt.AdminRole, StringComparer.Ordinal));
    }

    /// <summary>A claim given as repeated values, one JSON array, or a space-separated string (as <c>scope</c>).</summary>
    private static string[] Values(ClaimsPrincipal token, string type) =>
        token.FindAll(type).SelectMany(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Distinct(StringComparer.Ordinal).ToArray();

    public static IReadOnlyList<SecurityKey> SigningKeys(JwtOptions jwt)
    {
        var keys = new List<SecurityKey>();
        if (!string.IsNullOrEmpty(jwt.SigningKey))
        {
            keys.Add(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(jwt.SigningKey)));
        }

        if (!string.IsNullOrEmpty(jwt.PublicKeyFile))
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(File.ReadAllText(jwt.PublicKeyFile));
            keys.Add(new RsaSecurityKey(rsa));
        }

        if (!string.IsNullOrEmpty(jwt.JwksFile))
        {
            keys.AddRange(new JsonWebKeySet(File.ReadAllText(jwt.JwksFile)).GetSigningKeys());
        }

        return keys;
    }

    /// <summary>Start-up checks of the JWT settings; each problem is one line.</summary>
    public static IEnumerable<string> Problems(JwtOptions jwt)
    {
        if (!jwt.Configured)
        {
            yield break;
        }

        if (string.IsNullOrEmpty(jwt.Issuer) || string.IsNullOrEmpty(jwt.Audience))
        {
            yield return "Carml:Auth:Jwt: Issuer and Audience are required when a signing key is configured.";
        }

        if (!string.IsNullOrEmpty(jwt.SigningKey) && Encoding.UTF8.GetByteCount(jwt.SigningKey) < 32)
        {
            yield return "Carml:Auth:Jwt:SigningKey must be at least 32 bytes (256 bits) for HMAC-SHA256.";
        }

        var missing = false;
        foreach (var (file, setting) in new[] { (jwt.PublicKeyFile, "PublicKeyFile"), (jwt.JwksFile, "JwksFile") })
        {
            if (!string.IsNullOrEmpty(file) && !File.Exists(file))
            {
                missing = true;
                yield return $"Carml:Auth:Jwt:{setting} '{file}' does not exist.";
            }
        }

        if (!missing && LoadFailure(jwt) is { } failure)
        {
            yield return failure;
        }
    }

    /// <summary>Why the configured key files cannot be read as keys, or null when they can.</summary>
    private static string? LoadFailure(JwtOptions jwt)
    {
        try
        {
            return SigningKeys(jwt).Count > 0 ? null : "Carml:Auth:Jwt: the key files hold no signing key.";
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException or IOException or System.Text.Json.JsonException)
        {
            return $"Carml:Auth:Jwt: the public key or JWKS file cannot be read as a key ({e.GetType().Name}).";
        }
    }
}

using System.ComponentModel.DataAnnotations;

namespace Carml.Orleans.Gateway.Security;

/// <summary>Who may call the gateway and how callers prove it. Section <c>Carml:Auth</c>.</summary>
public sealed class AuthOptions
{
    public const string Section = "Carml:Auth";

    /// <summary>
    /// Whether callers must authenticate. Off (open mode, everyone an anonymous admin) is allowed only on a loopback
    /// address unless <see cref="AllowAnonymousOnNetwork"/> says otherwise.
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>The explicit, logged opt-in to run open on a non-loopback address.</summary>
    public bool AllowAnonymousOnNetwork { get; set; }

    /// <summary>
    /// A key (<c>carml_&lt;id&gt;_&lt;secret&gt;</c>, from <c>keys new</c>) that is an admin while it stays in the
    /// configuration; it is hashed at start and never stored or logged. Set it through the environment:
    /// <c>Carml__Auth__BootstrapAdminKey</c>.
    /// </summary>
    public string? BootstrapAdminKey { get; set; }

    /// <summary>The user the bootstrap key stands for.</summary>
    [Required]
    public string BootstrapAdminUser { get; set; } = "admin";

    /// <summary>Whether <c>/metrics</c> may be scraped without credentials.</summary>
    public bool AnonymousMetrics { get; set; } = true;

    /// <summary>More path prefixes that need no credentials (health and OpenAPI paths always do not).</summary>
    public List<string> AnonymousPaths { get; set; } = [];

    /// <summary>Path prefixes only admins reach (besides <c>/api/keys</c>): the Orleans dashboard by default.</summary>
    public List<string> AdminPaths { get; set; } = ["/dashboard"];

    /// <summary>How long a verified API key is trusted before the store is asked again (a revocation through
    /// another gateway takes at most this long to apply; one through this gateway applies at once).</summary>
    [Range(0, 3600)]
    public double KeyCacheSeconds { get; set; } = 30;

    /// <summary>How long a model's owner and visibility are reused before the store is asked again.</summary>
    [Range(0, 3600)]
    public double AccessCacheSeconds { get; set; } = 5;

    public JwtOptions Jwt { get; set; } = new();
}

/// <summary>JWT bearer tokens from an external identity provider. Section <c>Carml:Auth:Jwt</c>.</summary>
public sealed class JwtOptions
{
    /// <summary>The <c>iss</c> every token must carry (required when any signing key is configured).</summary>
    public string? Issuer { get; set; }

    /// <summary>The <c>aud</c> every token must carry (required when any signing key is configured).</summary>
    public string? Audience { get; set; }

    /// <summary>A shared secret for HS256/384/512, at least 32 bytes of UTF-8; set it through the environment.</summary>
    public string? SigningKey { get; set; }

    /// <summary>A PEM file with the RSA public key that verifies RS/PS-signed tokens.</summary>
    public string? PublicKeyFile { get; set; }

    /// <summary>A JWKS file (the provider's <c>jwks.json</c>) whose keys verify tokens.</summary>
    public string? JwksFile { get; set; }

    [Required] public string UserClaim { get; set; } = "sub";
    [Required] public string OrganizationClaim { get; set; } = "org";
    [Required] public string GroupsClaim { get; set; } = "groups";
    [Required] public string RolesClaim { get; set; } = "roles";

    /// <summary>The role (in <see cref="RolesClaim"/>) that makes a caller an admin.</summary>
    [Required] public string AdminRole { get; set; } = "admin";

    /// <summary>
    /// Put before the user claim to make the caller's user name, so a token's <c>sub</c> can never equal an API-key
    /// user's name (and so inherit that user's models, runs and uploads). Empty only when tokens are the sole source of users.
    /// </summary>
    public string UserPrefix { get; set; } = "jwt:";

    [Range(0, 600)]
    public int ClockSkewSeconds { get; set; } = 30;

    public bool Configured =>
        !string.IsNullOrEmpty(SigningKey) || !string.IsNullOrEmpty(PublicKeyFile) || !string.IsNullOrEmpty(JwksFile);
}

/// <summary>What one request and one caller may use. Section <c>Carml:Limits</c>; 0 turns a limit off.</summary>
public sealed class LimitOptions
{
    public const string Section = "Carml:Limits";

    /// <summary>Most tensor elements (all inputs together) in one inference request.</summary>
    [Range(0, long.MaxValue)]
    public long MaxTensorElements { get; set; } = 64L * 1024 * 1024;

    /// <summary>Largest batch (first dimension) in one inference request, on top of each model's max_batch_size.</summary>
    [Range(0, int.MaxValue)]
    public int MaxBatchSize { get; set; }

    /// <summary>Requests one caller (API key, user, or client address when anonymous) may have in flight.</summary>
    [Range(0, int.MaxValue)]
    public int ConcurrentRequests { get; set; }

    /// <summary>Requests one caller may make per <see cref="Window"/> (a token bucket: this many, refilled each window).</summary>
    [Range(0, int.MaxValue)]
    public int RequestsPerWindow { get; set; }

    /// <summary>The refill period of <see cref="RequestsPerWindow"/>.</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(1);
}

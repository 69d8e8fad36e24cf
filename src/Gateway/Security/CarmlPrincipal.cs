using System.Security.Claims;

namespace Carml.Orleans.Gateway.Security;

/// <summary>
/// Who is calling, whatever proved it (API key, JWT, or nobody in open mode): a user in an organization, a member of
/// groups, perhaps an admin. Every authorization decision is made on this, never on raw claims.
/// </summary>
public sealed record CarmlPrincipal(string User, string? Organization, IReadOnlyList<string> Groups, bool Admin, string? KeyId = null)
{
    public const string AuthenticationType = "carml";
    public const string UserClaim = "carml:user";
    public const string OrganizationClaim = "carml:org";
    public const string GroupClaim = "carml:group";
    public const string AdminClaim = "carml:admin";
    public const string KeyClaim = "carml:key";
    public const string AnonymousUser = "anonymous";

    /// <summary>Everyone in open mode (authentication off): an admin, so a local install works with no setup.</summary>
    public static CarmlPrincipal OpenMode { get; } = new(AnonymousUser, null, [], Admin: true);

    /// <summary>The claims of <see cref="OpenMode"/>, built once (open mode is the benchmark path).</summary>
    internal static ClaimsPrincipal OpenModeClaims { get; } = OpenMode.ToClaimsPrincipal();

    public bool IsAnonymous => User == AnonymousUser && KeyId is null;

    /// <summary>The owner recorded on runs and uploads; none for the anonymous open-mode caller.</summary>
    public string? Owner => IsAnonymous ? null : User;

    /// <summary>The rate-limit partition: the key, else the user.</summary>
    public string Partition => KeyId is { } key ? "key:" + key : "user:" + User;

    public ClaimsPrincipal ToClaimsPrincipal()
    {
        var claims = new List<Claim> { new(UserClaim, User), new(ClaimTypes.Name, User) };
        if (Organization is { } org)
        {
            claims.Add(new Claim(OrganizationClaim, org));
        }

        claims.AddRange(Groups.Select(g => new Claim(GroupClaim, g)));
        if (Admin)
        {
            claims.Add(new Claim(AdminClaim, "true"));
        }

        if (KeyId is { } key)
        {
            claims.Add(new Claim(KeyClaim, key));
        }

        return new ClaimsPrincipal(new ClaimsIdentity(claims, AuthenticationType, ClaimTypes.Name, null));
    }

    /// <summary>The principal the gateway put on the request, or null when it has none (not authenticated).</summary>
    public static CarmlPrincipal? From(ClaimsPrincipal? user)
    {
        if (user?.FindFirst(UserClaim)?.Value is not { Length: > 0 } name)
        {
            return null;
        }

        return new CarmlPrincipal(
            name,
            user.FindFirst(OrganizationClaim)?.Value,
            user.FindAll(GroupClaim).Select(c => c.Value).ToArray(),
            user.HasClaim(AdminClaim, "true"),
            user.FindFirst(KeyClaim)?.Value);
    }
}

/// <summary>The caller of the request being handled, for code below the endpoints (run records) that has no HttpContext.</summary>
public static class RequestPrincipal
{
    private static readonly AsyncLocal<CarmlPrincipal?> CurrentPrincipal = new();

    public static CarmlPrincipal? Current
    {
        get => CurrentPrincipal.Value;
        internal set => CurrentPrincipal.Value = value;
    }

    /// <summary>The owner to record on what the current request creates, or null.</summary>
    public static string? Owner => Current?.Owner;
}

public static class PrincipalExtensions
{
    /// <summary>The caller; endpoints behind the gateway's security always have one.</summary>
    public static CarmlPrincipal Principal(this HttpContext context) =>
        context.Items[typeof(CarmlPrincipal)] as CarmlPrincipal ?? CarmlPrincipal.From(context.User) ?? throw new Interfaces.ModelException(Interfaces.ModelErrorKind.Unauthenticated, "Credentials are required.");
}

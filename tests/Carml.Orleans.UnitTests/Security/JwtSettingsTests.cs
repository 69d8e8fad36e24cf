using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using Carml.Orleans.Gateway.Security;
using Microsoft.IdentityModel.Tokens;

namespace Carml.Orleans.Tests.Security;

public sealed class JwtSettingsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("carml-jwt-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Keys_come_from_the_secret_a_pem_file_and_a_jwks_file()
    {
        using var rsa = RSA.Create(2048);
        var pem = Path.Combine(_directory, "public.pem");
        File.WriteAllText(pem, rsa.ExportSubjectPublicKeyInfoPem());
        using var other = RSA.Create(2048);
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(other.ExportParameters(false)) { KeyId = "k1" });
        var jwks = Path.Combine(_directory, "jwks.json");
        File.WriteAllText(jwks, JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, kid = jwk.Kid, n = jwk.N, e = jwk.E, use = "sig" } } }));

        var keys = JwtBearerSetup.SigningKeys(new JwtOptions { SigningKey = new string('s', 32), PublicKeyFile = pem, JwksFile = jwks });

        Assert.Equal(3, keys.Count);
        Assert.Contains(keys, k => k is SymmetricSecurityKey);
        Assert.Contains(keys, k => k.KeyId == "k1");
    }

    [Fact]
    public void Settings_that_cannot_work_are_reported_before_start()
    {
        var garbage = Path.Combine(_directory, "garbage.pem");
        File.WriteAllText(garbage, "not a key");

        Assert.Contains(JwtBearerSetup.Problems(new JwtOptions { SigningKey = new string('s', 32) }), p => p.Contains("Issuer and Audience", StringComparison.Ordinal));
        Assert.Contains(JwtBearerSetup.Problems(new JwtOptions { Issuer = "i", Audience = "a", SigningKey = "short" }), p => p.Contains("32 bytes", StringComparison.Ordinal));
        Assert.Contains(JwtBearerSetup.Problems(new JwtOptions { Issuer = "i", Audience = "a", PublicKeyFile = garbage }), p => p.Contains("cannot be read", StringComparison.Ordinal));
        Assert.Contains(JwtBearerSetup.Problems(new JwtOptions { Issuer = "i", Audience = "a", JwksFile = Path.Combine(_directory, "missing.json") }), p => p.Contains("does not exist", StringComparison.Ordinal));
        Assert.Empty(JwtBearerSetup.Problems(new JwtOptions { Issuer = "i", Audience = "a", SigningKey = new string('s', 32) }));
        Assert.Empty(JwtBearerSetup.Problems(new JwtOptions()));
    }

    [Fact]
    public void Claims_map_to_user_organization_groups_and_admin()
    {
        var token = new ClaimsPrincipal(new ClaimsIdentity(
        [
            new Claim("sub", "alice"), new Claim("org", "acme"), new Claim("groups", "ml"), new Claim("groups", "research"),
            new Claim("roles", "viewer admin"),
        ]));

        var principal = JwtBearerSetup.ToPrincipal(token, new JwtOptions())!;

        Assert.Equal("jwt:alice", principal.User); // never the same name as an API-key user "alice"
        Assert.Equal("acme", principal.Organization);
        Assert.Equal(["ml", "research"], principal.Groups);
        Assert.True(principal.Admin);
    }

    [Fact]
    public void A_token_without_a_user_or_claiming_to_be_anonymous_maps_to_nobody()
    {
        Assert.Null(JwtBearerSetup.ToPrincipal(new ClaimsPrincipal(new ClaimsIdentity([new Claim("org", "acme")])), new JwtOptions()));
        Assert.Null(JwtBearerSetup.ToPrincipal(new ClaimsPrincipal(new ClaimsIdentity([new Claim("sub", "anonymous")])), new JwtOptions()));
    }

    [Fact]
    public void Claim_names_are_configurable()
    {
        var token = new ClaimsPrincipal(new ClaimsIdentity([new Claim("email", "bob@example.com"), new Claim("tenant", "t1"), new Claim("scope", "ml carml-admin")]));

        var principal = JwtBearerSetup.ToPrincipal(token, new JwtOptions { UserClaim = "email", OrganizationClaim = "tenant", RolesClaim = "scope", AdminRole = "carml-admin", UserPrefix = "" })!;

        Assert.Equal("bob@example.com", principal.User);
        Assert.Equal("t1", principal.Organization);
        Assert.True(principal.Admin);
    }
}

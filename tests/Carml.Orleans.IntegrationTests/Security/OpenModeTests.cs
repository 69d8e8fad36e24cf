using Carml.Orleans.Gateway;
using Carml.Orleans.Silo;
using Microsoft.Extensions.Configuration;

namespace Carml.Orleans.Tests.Security;

/// <summary>Authentication off is for loopback: a network address needs the explicit opt-in.</summary>
public sealed class OpenModeTests
{
    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    public void Open_gateway_on_a_network_address_fails_to_build_with_one_clear_line(string host)
    {
        var failure = Assert.Throws<InvalidOperationException>(() => GatewayHost.Build([], builder => builder.Configuration.AddInMemoryCollection(
            new Dictionary<string, string?> { ["Carml:Gateway:Host"] = host, ["Carml:Gateway:HttpPort"] = "0", ["Carml:Gateway:GrpcPort"] = "0" })));

        Assert.Equal(failure.Message, StartupFailure.Describe(failure));
        Assert.Contains("Carml:Auth:AllowAnonymousOnNetwork=true", failure.Message);
        Assert.DoesNotContain('\n', failure.Message);
    }

    [Fact]
    public async Task Open_gateway_on_a_network_address_builds_with_the_explicit_opt_in()
    {
        using var data = new TempDirectory();
        // Built, not started: the test never listens on a network address.
        var app = GatewayHost.Build([], builder => builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Carml:Gateway:Host"] = "0.0.0.0",
            ["Carml:Gateway:HttpPort"] = "0",
            ["Carml:Gateway:GrpcPort"] = "0",
            ["Carml:Silo:DataDirectory"] = data.Path,
            ["Carml:Auth:AllowAnonymousOnNetwork"] = "true",
        }));

        Assert.NotNull(app.Services.GetService(typeof(GatewayEndpoints)));
        await app.DisposeAsync();
    }

    [Fact]
    public void A_malformed_bootstrap_key_or_a_short_jwt_secret_fails_start_up_clearly()
    {
        static InvalidOperationException Build(string key, string value) => Assert.Throws<InvalidOperationException>(() => GatewayHost.Build([], builder =>
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Carml:Gateway:HttpPort"] = "0",
                ["Carml:Gateway:GrpcPort"] = "0",
                ["Carml:Auth:Enabled"] = "true",
                ["Carml:Auth:Jwt:Issuer"] = "i",
                ["Carml:Auth:Jwt:Audience"] = "a",
                [key] = value,
            })));

        Assert.Contains("BootstrapAdminKey", Build("Carml:Auth:BootstrapAdminKey", "hunter2").Message);
        Assert.Contains("at least 32 bytes", Build("Carml:Auth:Jwt:SigningKey", "short").Message);
    }
}

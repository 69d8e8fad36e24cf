using System.Net;

namespace Carml.Orleans.Tests.Observability;

/// <summary>The Orleans Dashboard is served at its path only when <c>Carml:Dashboard:Enabled</c> is true.</summary>
public sealed class DashboardTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_dashboard_is_served_at_its_path_when_enabled()
    {
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(data.Path, new Dictionary<string, string?>
        {
            ["Carml:Dashboard:Enabled"] = "true",
            ["Carml:Dashboard:Path"] = "/ops/dashboard",
        });

        using var page = await gateway.Http.GetAsync("/ops/dashboard/", Ct);

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("html", page.Content.Headers.ContentType?.MediaType ?? string.Empty);
        Assert.Contains("Orleans", await page.Content.ReadAsStringAsync(Ct), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task The_dashboard_is_not_found_when_disabled_by_default()
    {
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(data.Path);

        using var page = await gateway.Http.GetAsync("/dashboard/", Ct);

        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
    }
}

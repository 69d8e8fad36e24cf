using System.Net;
using Grpc.Core;
using Grpc.Health.V1;

namespace Carml.Orleans.Tests.Observability;

/// <summary>
/// The standard gRPC health service (<c>grpc.health.v1.Health</c>) answers from the same logic as <c>/healthz</c>:
/// serving while every component is ok, not serving once one fails.
/// </summary>
public sealed class HealthTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Grpc_health_says_serving_for_the_server_and_the_inference_service()
    {
        var health = new Health.HealthClient(fixture.Gateway.Channel);

        var server = await health.CheckAsync(new HealthCheckRequest { Service = string.Empty }, cancellationToken: Ct);
        var inference = await health.CheckAsync(new HealthCheckRequest { Service = "inference.GRPCInferenceService" }, cancellationToken: Ct);

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, server.Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, inference.Status);
        using var healthz = await fixture.Gateway.Http.GetAsync("/healthz", Ct);
        Assert.Equal(HttpStatusCode.OK, healthz.StatusCode);
    }

    [Fact]
    public async Task Grpc_health_of_an_unknown_service_is_not_found()
    {
        var health = new Health.HealthClient(fixture.Gateway.Channel);

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            health.CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
    }

    [Fact]
    public async Task A_failing_run_store_makes_healthz_and_grpc_health_report_it_while_predictions_go_on()
    {
        using var data = new TempDirectory();
        await using var gateway = await GatewayInstance.StartAsync(data.Path);
        var health = new Health.HealthClient(gateway.Channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest(), cancellationToken: Ct)).Status);

        // The run database becomes unusable: its file is replaced by a directory of the same name.
        var runs = Path.Combine(data.Path, "runs.db");
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var file in Directory.GetFiles(data.Path, "runs.db*"))
        {
            File.Delete(file);
        }

        Directory.CreateDirectory(runs);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();

        using var healthz = await gateway.Http.GetAsync("/healthz", Ct);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, healthz.StatusCode);
        var components = (await healthz.JsonAsync()).GetProperty("components");
        Assert.Equal("failing", components.GetProperty("run_store").GetProperty("status").GetString());
        Assert.Equal("ok", components.GetProperty("cluster_and_grain_storage").GetProperty("status").GetString());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest(), cancellationToken: Ct)).Status);

        // KServe readiness is about serving predictions, which still works.
        Assert.Equal(HttpStatusCode.OK, (await gateway.Http.GetAsync("/v2/health/ready", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await gateway.Http.PostJsonAsync("/v2/models/iris/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)))).StatusCode);
    }
}

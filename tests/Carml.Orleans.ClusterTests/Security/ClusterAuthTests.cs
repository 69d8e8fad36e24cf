using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Carml.Orleans.Onnx.Iris;

namespace Carml.Orleans.ClusterTests.Security;

/// <summary>
/// Authentication in cluster mode with real processes: API keys and model ownership live in grain state on PostgreSQL,
/// so a key made through one gateway works through another, survives the gateway, and is stored only as a hash.
/// </summary>
public sealed class ClusterAuthTests() : ClusterTest("cluster-auth")
{

    private readonly string _adminKey = NewKey();

    [Fact]
    public async Task Keys_and_ownership_made_through_one_gateway_hold_through_the_next_and_are_stored_hashed()
    {
        await using var postgres = new Carml.Orleans.Tests.PostgresServer();
        await postgres.InitializeAsync();
        postgres.SkipIfUnavailable();
        var database = ("Carml__Postgres__ConnectionString", await postgres.CreateDatabaseAsync());
        var consul = await StartEmulatorAsync();
        var silo = Start("auth-silo", ClusterProcess.BuiltDll("src/Silo", "Carml.Orleans.Silo"), consul, database,
            ("Carml__Silo__SiloPort", "0"), ("Carml__Silo__GatewayPort", "0"));
        await silo.WaitForLineAsync(@"Registered carml-silo as (\S+)", StartTimeout);

        var (firstProcess, first, _) = await StartAuthGatewayAsync(consul, database);
        var alice = await CreateKeyAsync(first, "alice", "a");
        await RegisterIrisAsync(first, "iris-owned", bearer: alice);
        Assert.Equal(HttpStatusCode.OK, await PredictAsync(first, alice, "iris-owned"));
        Assert.Equal(0, await firstProcess.StopGracefullyAsync(TimeSpan.FromSeconds(60)));

        var (_, second, _) = await StartAuthGatewayAsync(consul, database);
        var carol = await CreateKeyAsync(second, "carol", "c");
        Assert.Equal(HttpStatusCode.OK, await PredictAsync(second, alice, "iris-owned"));
        Assert.Equal(HttpStatusCode.NotFound, await PredictAsync(second, carol, "iris-owned"));
        Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(second, null, "iris-owned"));

        using (var revoke = new HttpRequestMessage(HttpMethod.Delete, new Uri(second, $"api/keys/{alice.Split('_')[1]}")))
        {
            revoke.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _adminKey);
            using var revoked = await Http.SendAsync(revoke, Ct);
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await PredictAsync(second, alice, "iris-owned"));

        // The key records are in PostgreSQL's grain storage, without their secrets.
        await using var connection = new Npgsql.NpgsqlConnection(database.Item2);
        await connection.OpenAsync(Ct);
        await using var rows = new Npgsql.NpgsqlCommand("SELECT payloadbinary, grainidextensionstring FROM orleansstorage", connection);
        await using var reader = await rows.ExecuteReaderAsync(Ct);
        var stored = new StringBuilder();
        while (await reader.ReadAsync(Ct))
        {
            stored.Append(reader.IsDBNull(0) ? string.Empty : Encoding.Latin1.GetString((byte[])reader[0]));
            stored.Append(reader.IsDBNull(1) ? string.Empty : reader.GetString(1));
        }

        Assert.Contains(alice.Split('_')[1], stored.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Secret(alice), stored.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Secret(carol), stored.ToString(), StringComparison.Ordinal);
    }

    private static string NewKey() =>
        $"carml_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}_{Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_')}";

    private static string Secret(string key) => key[(key.IndexOf('_', 6) + 1)..];

    private async Task<string> CreateKeyAsync(Uri gateway, string user, string org)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway, "api/keys"))
        {
            Content = JsonContent.Create(new { user, organization = org }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _adminKey);
        using var response = await Http.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"Key creation answered {(int)response.StatusCode}: {body}\n{Outputs()}");
        return JsonDocument.Parse(body).RootElement.GetProperty("key").GetString()!;
    }

    private async Task<HttpStatusCode> PredictAsync(Uri gateway, string? key, string model)
    {
        const string body = """{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(gateway, $"v2/models/{model}/infer"))
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        using var response = await Http.SendAsync(request, Ct);
        return response.StatusCode;
    }

    private Task<ClusterGateway> StartAuthGatewayAsync(Uri consul, (string, string) database) =>
        StartGatewayAsync(consul, database, ("Carml__Auth__Enabled", "true"), ("Carml__Auth__BootstrapAdminKey", _adminKey));
}

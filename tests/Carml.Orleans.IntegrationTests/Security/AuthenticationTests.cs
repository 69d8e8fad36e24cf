using System.Net;
using System.Security.Cryptography;
using System.Text;
using Carml.Orleans.Gateway.KServe.Grpc;
using Grpc.Core;
using Microsoft.IdentityModel.Tokens;

namespace Carml.Orleans.Tests.Security;

/// <summary>Who gets in: API keys and JWTs on HTTP and gRPC; everything else is 401 / UNAUTHENTICATED.</summary>
[Collection(SecuredGatewayCollection.Name)]
public sealed class AuthenticationTests(SecuredGatewayFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private GRPCInferenceService.GRPCInferenceServiceClient Grpc => fixture.Gateway.Grpc;

    [Fact]
    public async Task Requests_without_credentials_get_401_with_a_bearer_challenge_in_the_route_shape()
    {
        var http = fixture.Client(null);

        using var kserve = await http.GetAsync("/v2/models/iris", Ct);
        using var rest = await http.GetAsync("/api/models", Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, kserve.StatusCode);
        Assert.Equal("Bearer", kserve.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Contains("Credentials are required", (await kserve.JsonAsync()).GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, rest.StatusCode);
        Assert.Equal("application/problem+json", rest.Content.Headers.ContentType?.MediaType);
        Assert.Equal(401, (await rest.JsonAsync()).GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task Grpc_calls_without_credentials_are_unauthenticated()
    {
        var metadata = await Assert.ThrowsAsync<RpcException>(() => Grpc.ModelMetadataAsync(new ModelMetadataRequest { Name = "iris" }, cancellationToken: Ct).ResponseAsync);
        var infer = await Assert.ThrowsAsync<RpcException>(() => Grpc.ModelInferAsync(KServeGrpcTests.Typed(TestModels.IrisRows.Take(1)), cancellationToken: Ct).ResponseAsync);
        var server = await Assert.ThrowsAsync<RpcException>(() => Grpc.ServerMetadataAsync(new ServerMetadataRequest(), cancellationToken: Ct).ResponseAsync);

        Assert.All(new[] { metadata, infer, server }, e => Assert.Equal(StatusCode.Unauthenticated, e.StatusCode));
        Assert.Contains("Credentials are required", metadata.Status.Detail);
    }

    [Fact]
    public async Task Health_and_liveness_need_no_credentials_on_http_and_grpc()
    {
        var http = fixture.Client(null);

        using var live = await http.GetAsync("/v2/health/live", Ct);
        using var ready = await http.GetAsync("/v2/health/ready", Ct);
        using var healthz = await http.GetAsync("/healthz", Ct);
        var grpcLive = await Grpc.ServerLiveAsync(new ServerLiveRequest(), cancellationToken: Ct);
        var grpcReady = await Grpc.ServerReadyAsync(new ServerReadyRequest(), cancellationToken: Ct);

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.NotEqual(HttpStatusCode.Unauthorized, healthz.StatusCode);
        Assert.True(grpcLive.Live);
        Assert.True(grpcReady.Ready);
    }

    [Fact]
    public async Task Admin_key_from_configuration_and_x_api_key_header_both_authenticate()
    {
        using var bearer = await fixture.Client(fixture.AdminKey).GetAsync("/v2/models/iris", Ct);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v2/models/iris");
        request.Headers.Add("X-Api-Key", fixture.AdminKey);
        using var header = await fixture.Client(null).SendAsync(request, Ct);
        var grpc = await Grpc.ModelMetadataAsync(new ModelMetadataRequest { Name = "iris" }, new Metadata { { "x-api-key", fixture.AdminKey } }, cancellationToken: Ct);

        Assert.Equal(HttpStatusCode.OK, bearer.StatusCode);
        Assert.Equal(HttpStatusCode.OK, header.StatusCode);
        Assert.Equal("iris", grpc.Name);
    }

    [Theory]
    [InlineData("wrong-secret")]
    [InlineData("unknown-id")]
    [InlineData("malformed")]
    public async Task Invalid_api_keys_get_401_and_unauthenticated(string kind)
    {
        var real = fixture.Keys["alice"];
        var key = kind switch
        {
            "wrong-secret" => real[..^4] + (real.EndsWith("AAAA", StringComparison.Ordinal) ? "BBBB" : "AAAA"),
            "unknown-id" => "carml_0123456789abcdef_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('='),
            _ => "carml_not-a-key",
        };

        using var response = await fixture.Client(key).GetAsync("/api/models", Ct);
        var grpc = await Assert.ThrowsAsync<RpcException>(() =>
            Grpc.ServerMetadataAsync(new ServerMetadataRequest(), SecuredGatewayFixture.Bearer(key), cancellationToken: Ct).ResponseAsync);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, grpc.StatusCode);
        Assert.Contains("API key", grpc.Status.Detail);
    }

    [Fact]
    public async Task Jwts_signed_with_the_shared_secret_or_the_rsa_key_authenticate()
    {
        var hs = fixture.Jwt("jwt-user", "a");
        var rs = fixture.Jwt("jwt-user", "a", signing: fixture.RsaSigning);

        using var withHs = await fixture.Client(hs).GetAsync("/api/models", Ct);
        using var withRs = await fixture.Client(rs).GetAsync("/api/models", Ct);
        var grpc = await Grpc.ServerMetadataAsync(new ServerMetadataRequest(), SecuredGatewayFixture.Bearer(rs), cancellationToken: Ct);

        Assert.Equal(HttpStatusCode.OK, withHs.StatusCode);
        Assert.Equal(HttpStatusCode.OK, withRs.StatusCode);
        Assert.Equal("carml-orleans", grpc.Name);
    }

    [Fact]
    public async Task Jwt_admin_role_reaches_admin_routes_and_other_roles_do_not()
    {
        using var admin = await fixture.Client(fixture.Jwt("root", roles: ["admin"])).GetAsync("/api/keys", Ct);
        using var viewer = await fixture.Client(fixture.Jwt("viewer", roles: ["viewer"])).GetAsync("/api/keys", Ct);

        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, viewer.StatusCode);
    }

    [Fact]
    public async Task Expired_jwt_gets_401_and_unauthenticated()
    {
        var expired = fixture.Jwt("alice", expires: DateTime.UtcNow.AddHours(-1));

        using var response = await fixture.Client(expired).GetAsync("/api/models", Ct);
        var grpc = await Assert.ThrowsAsync<RpcException>(() =>
            Grpc.ServerMetadataAsync(new ServerMetadataRequest(), SecuredGatewayFixture.Bearer(expired), cancellationToken: Ct).ResponseAsync);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("expired", (await response.JsonAsync()).GetProperty("detail").GetString());
        Assert.Equal(StatusCode.Unauthenticated, grpc.StatusCode);
    }

    [Fact]
    public async Task Forged_jwts_with_a_wrong_key_or_alg_none_or_wrong_audience_get_401()
    {
        using var otherRsa = RSA.Create(2048);
        var forged = new[]
        {
            fixture.Jwt("root", roles: ["admin"], signing: new SigningCredentials(
                new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(48)), SecurityAlgorithms.HmacSha256)),
            fixture.Jwt("root", roles: ["admin"], signing: new SigningCredentials(new RsaSecurityKey(otherRsa), SecurityAlgorithms.RsaSha256)),
            SecuredGatewayFixture.UnsignedJwt("root"),
            fixture.Jwt("root", roles: ["admin"], audience: "someone-else"),
            "eyJhbGciOiJIUzI1NiJ9.not-base64!.x",
        };

        foreach (var token in forged)
        {
            using var response = await fixture.Client(token).GetAsync("/api/keys", Ct);
            var grpc = await Assert.ThrowsAsync<RpcException>(() =>
                Grpc.ServerMetadataAsync(new ServerMetadataRequest(), SecuredGatewayFixture.Bearer(token), cancellationToken: Ct).ResponseAsync);

            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{token[..20]}… answered {(int)response.StatusCode}");
            Assert.Equal(StatusCode.Unauthenticated, grpc.StatusCode);
        }
    }

    [Fact]
    public async Task Admin_only_grpc_services_answer_permission_denied_to_others()
    {
        var reflection = new Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(fixture.Gateway.Channel);

        async Task<StatusCode> ListServices(string user)
        {
            using var call = reflection.ServerReflectionInfo(fixture.GrpcAs(user), cancellationToken: Ct);
            try
            {
                await call.RequestStream.WriteAsync(new Grpc.Reflection.V1Alpha.ServerReflectionRequest { ListServices = "" }, Ct);
                await call.RequestStream.CompleteAsync();
                await foreach (var response in call.ResponseStream.ReadAllAsync(Ct))
                {
                    Assert.Contains(response.ListServicesResponse.Service, s => s.Name == "inference.GRPCInferenceService");
                }

                return StatusCode.OK;
            }
            catch (RpcException e)
            {
                // The server may refuse before the request is written: the write then fails (as Cancelled) and the
                // call's own status says why. Reading the response stream waits for the call to finish and throws
                // that status (GetStatus would race the trailers).
                try
                {
                    while (await call.ResponseStream.MoveNext(Ct))
                    {
                    }
                }
                catch (RpcException refusal)
                {
                    return refusal.StatusCode;
                }

                return e.StatusCode;
            }
        }

        Assert.Equal(StatusCode.OK, await ListServices("admin"));
        Assert.Equal(StatusCode.PermissionDenied, await ListServices("bob"));
        Assert.Equal(StatusCode.Unauthenticated, await ListServices("anonymous"));
    }

    [Fact]
    public async Task Non_bearer_authorization_schemes_get_401()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/models");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("admin:admin")));

        using var response = await fixture.Client(null).SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}

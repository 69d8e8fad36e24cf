using System.Net;
using System.Text;
using System.Text.Json;
using Carml.Orleans.Gateway.Security;

namespace Carml.Orleans.Tests.Security;

/// <summary>The admin key API and CLI, and the rule that runs and uploads belong to whoever made them.</summary>
[Collection(SecuredGatewayCollection.Name)]
public sealed class KeyAndOwnershipTests(SecuredGatewayFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Creates a 10-byte tus upload as <paramref name="user"/>; returns its location.</summary>
    private async Task<string> CreateUploadAsync(string user)
    {
        using var create = new HttpRequestMessage(HttpMethod.Post, "/api/uploads");
        create.Headers.Add("Tus-Resumable", "1.0.0");
        create.Headers.Add("Upload-Length", "10");
        using var created = await fixture.As(user).SendAsync(create, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return created.Headers.Location!.ToString();
    }

    [Fact]
    public async Task Admin_creates_a_key_whose_secret_is_shown_once_and_revoking_it_locks_it_out()
    {
        var admin = fixture.As("admin");

        using var created = await admin.PostJsonAsync("/api/keys", """{"user": "erin", "organization": "e", "groups": ["ml"], "name": "erin laptop"}""");
        var body = await created.JsonAsync();
        var key = body.GetProperty("key").GetString()!;
        var id = body.GetProperty("api_key").GetProperty("id").GetString()!;
        using var shown = await admin.GetAsync($"/api/keys/{id}", Ct);
        var shownText = await shown.Content.ReadAsStringAsync(Ct);
        using var listed = await admin.GetAsync("/api/keys", Ct);
        using var before = await fixture.Client(key).GetAsync("/api/models", Ct);
        using var revoked = await admin.DeleteAsync($"/api/keys/{id}", Ct);
        using var after = await fixture.Client(key).GetAsync("/api/models", Ct);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.StartsWith($"carml_{id}_", key, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, shown.StatusCode);
        Assert.DoesNotContain(key[(key.LastIndexOf('_') + 1)..], shownText, StringComparison.Ordinal);
        Assert.DoesNotContain("hash", shownText, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("salt", shownText, StringComparison.OrdinalIgnoreCase);
        Assert.Contains((await listed.JsonAsync()).EnumerateArray(), k => k.GetProperty("id").GetString() == id);
        Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.NotNull((await revoked.JsonAsync()).GetProperty("revoked_at").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        Assert.Contains("revoked", (await after.JsonAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Non_admins_cannot_create_list_or_revoke_keys()
    {
        var alice = fixture.As("alice");

        using var create = await alice.PostJsonAsync("/api/keys", """{"user": "mallory", "admin": true}""");
        using var list = await alice.GetAsync("/api/keys", Ct);
        using var revoke = await alice.DeleteAsync("/api/keys/0123456789abcdef", Ct);

        Assert.Equal(HttpStatusCode.Forbidden, create.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, list.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, revoke.StatusCode);
    }

    [Fact]
    public async Task Key_requests_without_a_user_or_for_unknown_ids_are_refused_precisely()
    {
        var admin = fixture.As("admin");

        using var noUser = await admin.PostJsonAsync("/api/keys", """{"organization": "x"}""");
        using var past = await admin.PostJsonAsync("/api/keys", """{"user": "x", "expires_at": "2001-01-01T00:00:00Z"}""");
        using var unknown = await admin.DeleteAsync("/api/keys/0123456789abcdef", Ct);
        using var malformed = await admin.GetAsync("/api/keys/..%2F..", Ct);

        Assert.Equal(HttpStatusCode.BadRequest, noUser.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, past.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, malformed.StatusCode);
    }

    [Fact]
    public async Task Keys_cli_creates_a_working_key_through_a_running_gateway()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var code = await KeysCommand.RunAsync(
            ["create", "--user", "frank", "--org", "f", "--group", "ml", "--url", fixture.Gateway.Http.BaseAddress!.ToString(), "--key", fixture.AdminKey],
            output, error);
        var key = JsonDocument.Parse(output.ToString()).RootElement.GetProperty("key").GetString()!;
        using var response = await fixture.Client(key).GetAsync("/api/models", Ct);
        var refused = await KeysCommand.RunAsync(
            ["create", "--user", "x", "--url", fixture.Gateway.Http.BaseAddress!.ToString(), "--key", fixture.Keys["alice"]], new StringWriter(), error);

        Assert.True(code == 0, error.ToString());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, refused);
        Assert.Contains("403", error.ToString());
    }

    [Fact]
    public async Task Prediction_runs_are_listed_for_their_owner_and_admins_only()
    {
        const string name = "owned-runs";
        await ModelRegistration.RegisterAsync(fixture.As("alice"), TestModels.IrisManifest(name, "1"), TestModels.Iris.OnnxBytes, "public");
        using var predicted = await fixture.As("alice").PostJsonAsync($"/v2/models/{name}/infer", KServeHttpTests.IrisRequest(TestModels.IrisRows.Take(1)));
        Assert.Equal(HttpStatusCode.OK, predicted.StatusCode);

        // Runs are written in the background: wait, bounded, for alice's to appear.
        string? runId = null;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (runId is null && DateTime.UtcNow < deadline)
        {
            using var mine = await fixture.As("alice").GetAsync($"/api/runs?model={name}", Ct);
            runId = (await mine.JsonAsync()).GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("id").GetString()).FirstOrDefault();
            if (runId is null)
            {
                await Task.Delay(100, Ct);
            }
        }

        Assert.True(runId is not null, "alice's prediction run was not recorded within 30 s.");
        using var bobs = await fixture.As("bob").GetAsync($"/api/runs?model={name}", Ct);
        using var admins = await fixture.As("admin").GetAsync($"/api/runs?model={name}", Ct);
        using var bobGets = await fixture.As("bob").GetAsync($"/api/runs/{runId}", Ct);
        using var aliceGets = await fixture.As("alice").GetAsync($"/api/runs/{runId}", Ct);

        Assert.Empty((await bobs.JsonAsync()).GetProperty("runs").EnumerateArray());
        Assert.Contains((await admins.JsonAsync()).GetProperty("runs").EnumerateArray(), r => r.GetProperty("id").GetString() == runId);
        Assert.Equal(HttpStatusCode.NotFound, bobGets.StatusCode);
        Assert.Equal("alice", (await aliceGets.JsonAsync()).GetProperty("owner").GetString());
    }

    [Fact]
    public async Task Uploads_are_visible_to_their_owner_and_admins_only()
    {
        var location = await CreateUploadAsync("alice");

        async Task<HttpStatusCode> Head(string user)
        {
            using var head = new HttpRequestMessage(HttpMethod.Head, location);
            head.Headers.Add("Tus-Resumable", "1.0.0");
            using var response = await fixture.As(user).SendAsync(head, Ct);
            return response.StatusCode;
        }

        using var bobGet = await fixture.As("bob").GetAsync(location, Ct);
        using var aliceGet = await fixture.As("alice").GetAsync(location, Ct);

        Assert.Equal(HttpStatusCode.OK, await Head("alice"));
        Assert.Equal(HttpStatusCode.OK, await Head("admin"));
        Assert.Equal(HttpStatusCode.NotFound, await Head("bob"));
        Assert.Equal(HttpStatusCode.NotFound, bobGet.StatusCode);
        Assert.Equal(HttpStatusCode.OK, aliceGet.StatusCode);
    }

    [Fact]
    public async Task Someone_elses_upload_cannot_be_used_as_a_model_source()
    {
        var id = (await CreateUploadAsync("alice")).Split('/')[^1];
        var manifest = TestModels.IrisManifest("from-alices-upload", "1").Replace("  path: iris.onnx", $"  upload: {id}", StringComparison.Ordinal);

        async Task<string> RegisterAs(string user)
        {
            using var response = await fixture.As(user).PostAsync("/api/models", new StringContent(manifest, Encoding.UTF8, "application/yaml"), Ct);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            return (await response.JsonAsync()).GetProperty("detail").GetString()!;
        }

        // alice is told her upload is unfinished; bob is told it does not exist.
        Assert.Contains("finish the upload first", await RegisterAs("alice"));
        Assert.Contains("not an upload this server knows", await RegisterAs("bob"));
    }

    [Fact]
    public async Task No_secret_reaches_the_logs()
    {
        using var created = await fixture.As("admin").PostJsonAsync("/api/keys", """{"user": "logcheck"}""");
        var key = (await created.JsonAsync()).GetProperty("key").GetString()!;
        var jwt = fixture.Jwt("logcheck");
        var expired = fixture.Jwt("logcheck", expires: DateTime.UtcNow.AddHours(-1));
        foreach (var credential in new[] { key, key[..^2] + "xx", jwt, expired, fixture.AdminKey, fixture.AdminKey[..^2] + "xx" })
        {
            (await fixture.Client(credential).GetAsync("/api/models", Ct)).Dispose();
        }

        var secrets = new[] { Secret(key), Secret(fixture.AdminKey), fixture.JwtSecret, jwt, expired, jwt.Split('.')[2], expired.Split('.')[2] };
        var lines = fixture.Logs.Lines.ToArray();
        Assert.NotEmpty(lines);
        Assert.Contains(lines, l => l.Contains("Refused", StringComparison.Ordinal));
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(lines, l => l.Contains(secret, StringComparison.Ordinal));
        }
    }

    private static string Secret(string key) => key[(ApiKeyFormat.Prefix.Length + ApiKeyFormat.IdLength + 1)..];
}

using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Carml.Orleans.Gateway.Security;

/// <summary>
/// <c>/api/keys</c> (admins only, enforced by <see cref="SecurityMiddleware"/>): create a key (its secret is in this
/// answer only), list, get, revoke. <c>/api/models/{name}/access</c>: read or change a model's owner and visibility.
/// </summary>
public static class SecurityApi
{
    public static IEndpointRouteBuilder MapSecurity(this IEndpointRouteBuilder endpoints)
    {
        var keys = endpoints.MapGroup(AccessRules.KeysPath).WithTags("API keys (admin)");
        keys.MapPost("/", CreateKeyAsync).WithSummary("Create an API key for a user; the answer holds the key, shown this once.");
        keys.MapGet("/", async (ApiKeyStore store) => TypedResults.Ok(await store.ListAsync())).WithSummary("Every API key, without secrets.");
        keys.MapGet("/{id}", async (string id, ApiKeyStore store) => TypedResults.Ok(await store.GetAsync(id))).WithSummary("One API key, without its secret.");
        keys.MapDelete("/{id}", async (string id, ApiKeyStore store) => TypedResults.Ok(await store.RevokeAsync(id))).WithSummary("Revoke an API key.");

        var access = endpoints.MapGroup("/api/models/{name}/access").WithTags("Models");
        access.MapGet("/", async (string name, HttpContext context, ModelAuthorizer authorizer) =>
            TypedResults.Ok(await authorizer.GetDtoAsync(context.Principal(), name))).WithSummary("A model's owner and visibility.");
        access.MapPut("/", async (string name, ModelAccessRequest request, HttpContext context, ModelAuthorizer authorizer) =>
            TypedResults.Ok(await authorizer.SetAsync(context.Principal(), name, request)))
            .WithSummary("Set who may read a model: visibility private, group (with groups), organization or public. Owner or admin; only admins change the owner.");
        return endpoints;
    }

    private static async Task<Created<CreatedApiKey>> CreateKeyAsync(ApiKeyRequest? request, HttpContext context, ApiKeyStore store)
    {
        var created = await store.CreateAsync(request ?? throw ModelException.InvalidArgument("Send {\"user\": ..., \"organization\": ..., \"groups\": [...], \"admin\": false}."), context.Principal());
        return TypedResults.Created($"{AccessRules.KeysPath}/{created.ApiKey.Id}", created);
    }
}

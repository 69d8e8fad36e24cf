using System.Text;
using Carml.Orleans.Core;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Gateway.Security;
using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Carml.Orleans.Gateway.Management;

/// <summary>The body of <c>PUT /api/models/{name}/versions/{version}/replicas</c>.</summary>
public sealed record ScaleRequest(int? Replicas);

/// <summary>
/// The REST management API for models and their files: register (multipart manifest + model file, or a manifest that
/// names a stored artifact), list, get, versions, delete; and the content-addressed artifact store.
/// </summary>
public static class ModelManagementApi
{
    public const int DefaultPageSize = 100;
    private const int MaxManifestBytes = 1024 * 1024;

    public static IEndpointRouteBuilder MapModelManagement(this IEndpointRouteBuilder endpoints)
    {
        var models = endpoints.MapGroup("/api/models").WithTags("Models").RequireModelAccess(writeUnlessGet: true);
        models.MapPost("/", RegisterAsync)
            .WithSummary("Register a model version: multipart parts 'manifest' (YAML or JSON) and 'model' (ONNX file), or a manifest body whose source.sha256 names a stored artifact.");
        models.MapGet("/", ListAsync).WithSummary("List models by name, paginated with page_size and page_token.");
        models.MapGet("/{name}", GetVersionsAsync).WithSummary("A model name with its versions.");
        models.MapGet("/{name}/versions", GetVersionsAsync).WithSummary("A model name with its versions.");
        models.MapGet("/{name}/versions/{version}", GetVersionAsync).WithSummary("One version ('latest' = highest).");
        models.MapDelete("/{name}/versions/{version}", DeleteAsync).WithSummary("Unload and delete one version.");
        models.MapPut("/{name}/versions/{version}/replicas", ScaleAsync)
            .WithSummary("Set how many replicas serve one version: body {\"replicas\": N}, 1..64; loads the new ones, unloads the extra ones.");

        var artifacts = endpoints.MapGroup("/api/artifacts").WithTags("Artifacts");
        artifacts.MapPost("/", PutArtifactAsync)
            .WithSummary("Store a file; answers its SHA-256 for a manifest's source.sha256.");
        artifacts.MapGet("/{sha256}", GetArtifact).WithSummary("Whether the store holds a file, and its size.");
        return endpoints;
    }

    private static async Task<Created<ModelVersionDto>> RegisterAsync(
        HttpRequest request,
        IGrainFactory grains,
        ContentStore store,
        ModelSourceResolver sources,
        ModelRouter router,
        IOptions<GatewayOptions> options,
        CancellationToken cancellationToken)
    {
        var resolution = new ModelSourceResolver.Resolution();
        try
        {
            string manifestText;
            StoredContent? sent = null;
            if (request.HasFormContentType && MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
                && mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            {
                (manifestText, sent) = await ReadMultipartAsync(request, mediaType, store, options.Value.MaxRequestBytes, cancellationToken);
                if (sent is { Created: true })
                {
                    resolution.Added.Add(sent.Sha256);
                }
            }
            else
            {
                manifestText = await ReadTextAsync(request.Body, MaxManifestBytes, "manifest", cancellationToken);
            }

            var manifest = ManifestReader.Parse(manifestText);
            await using var claim = await request.HttpContext.RequestServices.GetRequiredService<ModelAuthorizer>()
                .ClaimAsync(request.HttpContext.Principal(), manifest.Name, request.Query["visibility"].FirstOrDefault());
            await sources.ResolveAsync(manifest, sent, resolution, cancellationToken);
            var artifact = resolution.Artifact!;
            var status = await grains.GetGrain<IModelGrain>(manifest.Id.Key).RegisterAsync(manifest, artifact);
            router.Invalidate(manifest.Name);
            claim.Keep();
            resolution.Added.Clear();
            return TypedResults.Created($"/api/models/{manifest.Name}/versions/{manifest.Version}", ModelVersionDto.From(status));
        }
        finally
        {
            // Nothing is kept from a refused registration: the files this request added go again.
            resolution.Discard(store);
        }
    }

    private static async Task<(string Manifest, StoredContent? Model)> ReadMultipartAsync(
        HttpRequest request, MediaTypeHeaderValue mediaType, ContentStore store, long maxBytes, CancellationToken cancellationToken)
    {
        var boundary = HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value;
        if (string.IsNullOrEmpty(boundary))
        {
            throw ModelException.InvalidArgument("The multipart request has no boundary.");
        }

        var reader = new MultipartReader(boundary, request.Body) { BodyLengthLimit = maxBytes };
        string? manifest = null;
        StoredContent? model = null;
        try
        {
            while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
            {
                var name = section.GetContentDispositionHeader()?.Name.Value?.Trim('"');
                switch (name)
                {
                    case "manifest" when manifest is null:
                        manifest = await ReadTextAsync(section.Body, MaxManifestBytes, "manifest", cancellationToken);
                        break;
                    case "model" when model is null:
                        model = await store.PutAsync(section.Body, maxBytes, cancellationToken);
                        break;
                    case "manifest" or "model":
                        throw ModelException.InvalidArgument($"The multipart part '{name}' is given more than once.");
                    default:
                        throw ModelException.InvalidArgument($"Unknown multipart part '{name}'; send 'manifest' and 'model'.");
                }
            }
        }
        catch (Exception)
        {
            if (model is { Created: true })
            {
                store.Delete(model.Sha256);
            }

            throw;
        }

        if (manifest is null)
        {
            if (model is { Created: true })
            {
                store.Delete(model.Sha256);
            }

            throw ModelException.InvalidArgument("The multipart request has no 'manifest' part.");
        }

        return (manifest, model);
    }

    private static async Task<string> ReadTextAsync(Stream body, int maxBytes, string what, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                throw new ModelException(ModelErrorKind.PayloadTooLarge, $"The {what} is larger than {maxBytes} bytes.");
            }

            buffer.Write(chunk, 0, read);
        }

        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        catch (DecoderFallbackException)
        {
            throw ModelException.InvalidArgument($"The {what} is not UTF-8 text.");
        }
    }

    private static async Task<Ok<ModelListDto>> ListAsync(
        IGrainFactory grains,
        HttpContext context,
        ModelAuthorizer authorizer,
        [FromQuery(Name = "page_size")] int? pageSize,
        [FromQuery(Name = "page_token")] string? pageToken)
    {
        var page = await grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey)
            .ListAsync(pageToken, pageSize ?? DefaultPageSize);
        var readable = await authorizer.FilterReadableAsync(context.Principal(), page.Models, m => m.Name);
        return TypedResults.Ok(new ModelListDto(
            readable.Select(m => new ModelSummaryDto(m.Name, m.Versions, m.Latest)).ToArray(),
            page.NextPageToken));
    }

    private static async Task<Ok<ModelSummaryDto>> GetVersionsAsync(string name, ModelRouter router)
    {
        var versions = await router.GetVersionsAsync(name);
        return versions.Count == 0
            ? throw ModelException.UnknownModel(name, null)
            : TypedResults.Ok(new ModelSummaryDto(name, versions, versions[^1]));
    }

    private static async Task<Ok<ModelVersionDto>> GetVersionAsync(string name, string version, ModelRouter router, IGrainFactory grains)
    {
        var id = await router.ResolveVersionAsync(name, version);
        var status = await grains.GetGrain<IModelGrain>(id.Key).GetStatusAsync()
            ?? throw ModelException.UnknownModel(id.Name, id.Version);
        return TypedResults.Ok(ModelVersionDto.From(status));
    }

    private static async Task<NoContent> DeleteAsync(string name, string version, ModelRouter router, IGrainFactory grains)
    {
        var id = await router.ResolveVersionAsync(name, version);
        var deleted = await grains.GetGrain<IModelGrain>(id.Key).DeleteAsync();
        router.Invalidate(name);
        return deleted ? TypedResults.NoContent() : throw ModelException.UnknownModel(id.Name, id.Version);
    }

    private static async Task<Ok<ModelVersionDto>> ScaleAsync(string name, string version, ScaleRequest? body, ModelRouter router, IGrainFactory grains)
    {
        if (body?.Replicas is not { } replicas)
        {
            throw ModelException.InvalidArgument("The body must be {\"replicas\": N}.");
        }

        if (replicas is < 1 or > ManifestValidator.MaxReplicas)
        {
            throw ModelException.InvalidArgument($"replicas must be between 1 and {ManifestValidator.MaxReplicas}, got {replicas}.");
        }

        var id = await router.ResolveVersionAsync(name, version);
        var status = await grains.GetGrain<IModelGrain>(id.Key).ScaleAsync(replicas);
        router.Invalidate(name);
        return TypedResults.Ok(ModelVersionDto.From(status));
    }

    private static async Task<Created<ArtifactDto>> PutArtifactAsync(
        HttpRequest request, ContentStore store, IOptions<GatewayOptions> options, CancellationToken cancellationToken)
    {
        var stored = await store.PutAsync(request.Body, options.Value.MaxRequestBytes, cancellationToken);
        return TypedResults.Created($"/api/artifacts/{stored.Sha256}", new ArtifactDto(stored.Sha256, stored.SizeBytes));
    }

    private static Ok<ArtifactDto> GetArtifact(string sha256, ContentStore store) =>
        store.Exists(sha256.ToLowerInvariant())
            ? TypedResults.Ok(new ArtifactDto(sha256.ToLowerInvariant(), store.SizeOf(sha256.ToLowerInvariant())))
            : throw ModelException.NotFound($"The artifact store has no file with SHA-256 {sha256}.");
}

using System.Buffers;
using Carml.Orleans.Core;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Gateway.Security;
using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Carml.Orleans.Gateway.KServe;

/// <summary>KServe v2 / Open Inference Protocol over HTTP.</summary>
public static class KServeHttpApi
{
    public static IEndpointRouteBuilder MapKServeHttp(this IEndpointRouteBuilder endpoints)
    {
        var v2 = endpoints.MapGroup("/v2").WithTags("KServe v2").RequireModelAccess();
        v2.MapGet("/health/live", () => Results.Ok(new { live = true }));
        v2.MapGet("/health/ready", async (KServeServer server, CancellationToken ct) =>
            await server.IsReadyAsync(ct) ? Results.Ok(new { ready = true }) : Results.Json(new { ready = false }, statusCode: 503));
        v2.MapGet("/", (KServeServer server) => Results.Ok(new
        {
            name = server.Name,
            version = KServeServer.Version,
            extensions = KServeServer.Extensions,
        }));

        v2.MapGet("/models/{name}", (string name, KServeServer server) => MetadataAsync(server, name, null));
        v2.MapGet("/models/{name}/versions/{version}", (string name, string version, KServeServer server) => MetadataAsync(server, name, version));
        v2.MapGet("/models/{name}/ready", (string name, KServeServer server) => ReadyAsync(server, name, null));
        v2.MapGet("/models/{name}/versions/{version}/ready", (string name, string version, KServeServer server) => ReadyAsync(server, name, version));
        v2.MapPost("/models/{name}/infer", (string name, HttpContext context, ModelRouter router) =>
            InferAsync(context, router, name, null));
        v2.MapPost("/models/{name}/versions/{version}/infer", (string name, string version, HttpContext context, ModelRouter router) =>
            InferAsync(context, router, name, version));
        return endpoints;
    }

    private static async Task<IResult> MetadataAsync(KServeServer server, string name, string? version)
    {
        var metadata = await server.GetModelMetadataAsync(name, version);
        return Results.Ok(new
        {
            name = metadata.Name,
            versions = metadata.Versions,
            platform = metadata.Platform,
            inputs = metadata.Inputs.Select(TensorMetadata),
            outputs = metadata.Outputs.Select(TensorMetadata),
        });
    }

    private static object TensorMetadata(TensorSpec spec) => new { name = spec.Name, datatype = spec.Datatype.ToName(), shape = spec.Shape };

    private static async Task<IResult> ReadyAsync(KServeServer server, string name, string? version) =>
        await server.IsModelReadyAsync(name, version)
            ? Results.Ok(new { name, ready = true })
            : Results.Json(new KServeError($"Model '{name}' is not ready."), statusCode: StatusCodes.Status400BadRequest);

    private static async Task InferAsync(HttpContext context, ModelRouter router, string name, string? version)
    {
        // The body limit is Kestrel's and RequestSizeLimitMiddleware's (Carml:Gateway:MaxRequestBytes).
        var headerLength = ParseHeaderLength(context.Request);
        var body = await ReadBodyAsync(context.Request, context.RequestAborted);
        var request = KServeHttpCodec.Decode(body, headerLength);
        context.RequestServices.GetRequiredService<InferenceLimits>().Check(request.Request);
        // A client that goes away takes its request out of the replica's queue.
        var response = await router.InferAsync(name, version, request.Request, context.RequestAborted);

        var buffer = new ArrayBufferWriter<byte>(512);
        var jsonLength = KServeHttpCodec.Encode(buffer, response, request);
        if (jsonLength is { } length)
        {
            context.Response.ContentType = "application/octet-stream";
            context.Response.Headers[KServeHttpCodec.HeaderLengthHeader] = length.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        else
        {
            context.Response.ContentType = "application/json";
        }

        context.Response.ContentLength = buffer.WrittenCount;
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    private static int? ParseHeaderLength(HttpRequest request)
    {
        if (!request.Headers.TryGetValue(KServeHttpCodec.HeaderLengthHeader, out var values))
        {
            return null;
        }

        return int.TryParse(values.ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var length)
            ? length
            : throw ModelException.InvalidArgument($"{KServeHttpCodec.HeaderLengthHeader} '{values}' is not a non-negative integer.");
    }

    private static async Task<ReadOnlyMemory<byte>> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } known)
        {
            var exact = new byte[known];
            await request.Body.ReadExactlyAsync(exact, cancellationToken);
            return exact;
        }

        using var copy = new MemoryStream();
        await request.Body.CopyToAsync(copy, cancellationToken);
        return copy.GetBuffer().AsMemory(0, (int)copy.Length);
    }
}

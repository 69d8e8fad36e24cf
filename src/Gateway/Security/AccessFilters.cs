using Carml.Orleans.Core;
using Carml.Orleans.Gateway.Management;
using Carml.Orleans.Gateway.Predictor;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.Security;

/// <summary>
/// Endpoint filters that put <see cref="ModelAuthorizer"/>'s decisions on route groups, so each endpoint file gains
/// one line rather than a check per handler.
/// </summary>
public static class AccessFilters
{
    /// <summary>Routes with <c>{name}</c> (and perhaps <c>{version}</c>) of a model: read, or write for non-GET when <paramref name="writeUnlessGet"/>.</summary>
    public static TBuilder RequireModelAccess<TBuilder>(this TBuilder builder, bool writeUnlessGet = false) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            if (http.Request.RouteValues["name"] is string name)
            {
                var authorizer = http.RequestServices.GetRequiredService<ModelAuthorizer>();
                var version = http.Request.RouteValues["version"] as string;
                if (writeUnlessGet && !HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method))
                {
                    await authorizer.RequireWriteAsync(http.Principal(), name, version);
                }
                else
                {
                    await authorizer.RequireReadAsync(http.Principal(), name, version);
                }
            }

            return await next(context);
        });

    /// <summary>Predictors: opening one needs read on its model, and so does every use of one.</summary>
    public static TBuilder RequirePredictorAccess<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var authorizer = http.RequestServices.GetRequiredService<ModelAuthorizer>();
            if (http.Principal().Admin)
            {
                return await next(context);
            }

            if (http.Request.RouteValues["id"] is string id)
            {
                var predictor = await http.RequestServices.GetRequiredService<PredictorService>().GetAsync(id);
                await authorizer.RequireReadAsync(http.Principal(), predictor.Model.Name);
            }
            else if (context.Arguments.OfType<OpenPredictorDto>().FirstOrDefault() is { Model: { Length: > 0 } model } open)
            {
                await authorizer.RequireReadAsync(http.Principal(), model, open.Version);
            }

            return await next(context);
        });

    /// <summary>Evaluations: starting one needs read on the model; seeing or cancelling one is for its owner and admins.</summary>
    public static TBuilder RequireEvaluationAccess<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var caller = http.Principal();
            var grains = http.RequestServices.GetRequiredService<IGrainFactory>();
            var ids = http.Request.RouteValues["id"] is string id ? [id]
                : http.Request.Path.StartsWithSegments("/api/evaluations/compare")
                    ? (http.Request.Query["ids"].ToString()).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    : [];
            foreach (var run in ids)
            {
                if (!caller.Admin && RunIds.IsValid(run) && await grains.GetGrain<IEvaluationGrain>(run).GetAsync() is { } record
                    && !ModelAuthorizer.CanSee(caller, record.Owner))
                {
                    throw ModelException.NotFound($"There is no evaluation {run}.");
                }
            }

            if (context.Arguments.OfType<EvaluationRequestDto>().FirstOrDefault() is { Model: { Length: > 0 } model } start)
            {
                await http.RequestServices.GetRequiredService<ModelAuthorizer>().RequireReadAsync(caller, model, start.Version);
            }

            return await next(context);
        });

    /// <summary>One run is for its owner and admins (searches are narrowed to the caller's runs by the endpoint).</summary>
    public static TBuilder RequireRunAccess<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var caller = http.Principal();
            if (!caller.Admin && http.Request.RouteValues["id"] is string id && RunIds.IsValid(id)
                && await http.RequestServices.GetRequiredService<IRunStore>().GetAsync(id, http.RequestAborted) is { } run
                && !ModelAuthorizer.CanSee(caller, run.Owner))
            {
                throw ModelException.NotFound($"There is no run {id}.");
            }

            return await next(context);
        });

    /// <summary>Uploads are for their owner and admins; anyone else is told there is no such upload.</summary>
    public static TBuilder RequireUploadAccess<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            if (HttpMethods.IsOptions(http.Request.Method))
            {
                return await next(context); // tus capability discovery carries no credentials and reveals no upload
            }

            var caller = http.Principal();
            if (!caller.Admin && http.Request.RouteValues["id"] is string id && Core.UploadFileStore.IsUploadId(id)
                && await http.RequestServices.GetRequiredService<IGrainFactory>().GetGrain<IUploadGrain>(id).GetAsync() is { } upload
                && !ModelAuthorizer.CanSee(caller, upload.Owner))
            {
                http.Response.Headers["Tus-Resumable"] = Uploads.TusProtocol.Version;
                return Results.Text($"There is no upload {id}.", statusCode: StatusCodes.Status404NotFound);
            }

            return await next(context);
        });

    /// <summary>Whether the current caller may use an upload as a model or dataset source (theirs, or they are an admin).</summary>
    public static bool MayUse(UploadInfo upload) =>
        RequestPrincipal.Current is not { } caller || ModelAuthorizer.CanSee(caller, upload.Owner);

    /// <summary>The owner filter for a run search: the caller's own runs, or all of them for an admin.</summary>
    public static string? RunOwnerFilter(HttpContext context) =>
        context.Principal() is { Admin: false } caller ? caller.User : null;
}

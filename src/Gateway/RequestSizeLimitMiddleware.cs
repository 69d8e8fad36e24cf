using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway;

/// <summary>
/// Applies <see cref="GatewayOptions.MaxRequestBytes"/>: a declared body over the limit is refused with 413 before it
/// is read; a body without a declared length is cut by Kestrel at the limit (also 413). gRPC requests are exempt here
/// because gRPC enforces the same limit per message and answers RESOURCE_EXHAUSTED, which its clients expect; tus
/// uploads are exempt because they are bounded by their declared length and <c>Carml:Uploads:MaxSize</c>.
/// </summary>
public sealed class RequestSizeLimitMiddleware(RequestDelegate next, IOptions<GatewayOptions> options)
{
    public Task InvokeAsync(HttpContext context)
    {
        var limit = options.Value.MaxRequestBytes;
        if (Security.AccessRules.IsGrpc(context.Request))
        {
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
            {
                feature.MaxRequestBodySize = null;
            }
        }
        else if (context.Request.ContentLength > limit && !context.Request.Path.StartsWithSegments(Uploads.TusApi.Prefix))
        {
            throw new ModelException(
                ModelErrorKind.PayloadTooLarge,
                $"The request body of {context.Request.ContentLength} bytes is larger than the {limit} bytes the server accepts (Carml:Gateway:MaxRequestBytes).");
        }

        return next(context);
    }
}

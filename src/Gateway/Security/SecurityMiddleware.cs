using System.Globalization;
using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Security;

/// <summary>Which paths need no credentials and which need an admin: one table for HTTP and gRPC.</summary>
public static class AccessRules
{
    private static readonly string[] AlwaysAnonymous =
    [
        "/v2/health/live", "/v2/health/ready", "/healthz", "/docs", "/openapi", "/scalar",
        "/inference.GRPCInferenceService/ServerLive", "/inference.GRPCInferenceService/ServerReady", "/grpc.health.v1.Health",
    ];

    public const string KeysPath = "/api/keys";

    public const string MetricsPath = "/metrics";

    /// <summary>
    /// Health, OpenAPI, CORS preflights (which never carry credentials), <c>/metrics</c> on the dedicated metrics port
    /// (a network operators expose to their scraper, not to clients) and the configured extra paths.
    /// </summary>
    public static bool IsAnonymous(HttpRequest request, AuthOptions options, bool onMetricsPort = false) =>
        HttpMethods.IsOptions(request.Method)
        || AlwaysAnonymous.Any(p => request.Path.StartsWithSegments(p))
        || (options.AnonymousMetrics && onMetricsPort && request.Path.StartsWithSegments(MetricsPath))
        || options.AnonymousPaths.Any(p => request.Path.StartsWithSegments(p));

    /// <summary>
    /// Keys, the configured admin paths (the dashboard), agent changes, dataset deletion, and <c>/metrics</c> elsewhere than
    /// anonymously on the metrics port: its labels name every model served, private ones included.
    /// </summary>
    public static bool RequiresAdmin(HttpRequest request, AuthOptions options) =>
        request.Path.StartsWithSegments(KeysPath)
        || request.Path.StartsWithSegments(MetricsPath)
        || options.AdminPaths.Any(p => request.Path.StartsWithSegments(p))
        || (request.Path.StartsWithSegments("/api/agents") && !HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        || (request.Path.StartsWithSegments("/api/datasets") && HttpMethods.IsDelete(request.Method));

    /// <summary>A gRPC call: HTTP/2 with a gRPC content type (an HTTP/1.1 request claiming it gets plain HTTP refusals).</summary>
    public static bool IsGrpc(HttpRequest request) =>
        HttpProtocol.IsHttp2(request.Protocol)
        && request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;
}

/// <summary>
/// The gateway's front door, after routing and before any endpoint: authenticates the caller (API key or JWT; in open
/// mode everyone is <see cref="CarmlPrincipal.OpenMode"/>), answers 401 / UNAUTHENTICATED without valid credentials and
/// 403 / PERMISSION_DENIED on admin routes for non-admins, then applies the per-caller limits. Per-model decisions are
/// <see cref="ModelAuthorizer"/>'s, at the endpoints.
/// </summary>
public sealed partial class SecurityMiddleware(
    RequestDelegate next,
    IOptions<AuthOptions> options,
    CallerRateLimiter limiter,
    JwtPrincipalCache tokens,
    ILogger<SecurityMiddleware> logger,
    Observability.MetricsEndpoint? metrics = null)
{
    private const string MissingCredentials = "Credentials are required: send 'Authorization: Bearer <API key or JWT>' or 'X-Api-Key: <API key>'.";

    public async Task InvokeAsync(HttpContext context)
    {
        var auth = options.Value;
        var request = context.Request;
        if (ControlCharacterIn(request.Headers) is { } header)
        {
            // Kestrel lets bytes such as \x01 through; a credential or name with one is never legitimate.
            await SecurityResponses.RefuseAsync(context, ModelErrorKind.InvalidArgument, $"Header '{header}' has a control character.");
            return;
        }

        var anonymous = AccessRules.IsAnonymous(request, auth, metrics?.Uri is { } scrape && context.Connection.LocalPort == scrape.Port);
        CarmlPrincipal? principal;
        if (!auth.Enabled)
        {
            principal = CarmlPrincipal.OpenMode;
            context.User = CarmlPrincipal.OpenModeClaims;
        }
        else if (CarmlSchemes.Credential(request).Jwt is { } token && tokens.TryGet(token, out var known))
        {
            principal = known;
            context.User = known.ToClaimsPrincipal();
        }
        else
        {
            var result = CarmlSchemes.Credential(request).Present ? await context.AuthenticateAsync(CarmlSchemes.Carml) : AuthenticateResult.NoResult();
            principal = result.Succeeded ? CarmlPrincipal.From(result.Principal) : null;
            if (principal is not null)
            {
                context.User = result.Principal!;
                if (principal.KeyId is null && CarmlSchemes.Credential(request).Jwt is { } validated)
                {
                    tokens.Add(validated, principal, result.Properties?.ExpiresUtc);
                }
            }

            if (principal is null && !anonymous)
            {
                var reason = result.Failure is null ? MissingCredentials : Reason(result.Failure);
                LogRefused(logger, request.Method, request.Path, reason);
                await SecurityResponses.RefuseAsync(context, ModelErrorKind.Unauthenticated, reason);
                return;
            }
        }

        if (principal is not null)
        {
            context.Items[typeof(CarmlPrincipal)] = principal;
            RequestPrincipal.Current = principal;
        }

        if (anonymous)
        {
            await next(context);
            return;
        }

        if (AccessRules.RequiresAdmin(request, auth) && principal is { Admin: false })
        {
            await SecurityResponses.RefuseAsync(context, ModelErrorKind.PermissionDenied, "This route is for admins.");
            return;
        }

        await limiter.RunAsync(context, next);
    }

    /// <summary>The first header whose value has a control character (other than tab), or null.</summary>
    public static string? ControlCharacterIn(IHeaderDictionary headers)
    {
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
            {
                foreach (var c in value ?? string.Empty)
                {
                    if ((c < ' ' && c != '\t') || c == '\u007F')
                    {
                        return name;
                    }
                }
            }
        }

        return null;
    }

    /// <summary>Why a credential was refused, in words safe to return: never the token or key itself.</summary>
    private static string Reason(Exception failure) => failure switch
    {
        Microsoft.IdentityModel.Tokens.SecurityTokenExpiredException => "The bearer token has expired.",
        Microsoft.IdentityModel.Tokens.SecurityTokenException => "The bearer token is not valid (signature, issuer, audience, algorithm or lifetime).",
        ArgumentException => "The bearer token is malformed.",
        _ => failure.Message,
    };

    [LoggerMessage(EventId = 7401, Level = LogLevel.Information, Message = "Refused {Method} {Path}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string method, string path, string reason);
}

/// <summary>Refusals in each protocol's own shape: a gRPC status for gRPC calls, the API's error body otherwise.</summary>
public static class SecurityResponses
{
    public const string RetryAfterMetadata = "retry-after";

    public static async Task RefuseAsync(HttpContext context, ModelErrorKind kind, string message, TimeSpan? retryAfter = null)
    {
        var response = context.Response;
        var seconds = retryAfter is { } wait ? Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture) : null;
        if (AccessRules.IsGrpc(context.Request))
        {
            // A trailers-only response: gRPC clients read the status (and the retry-after metadata) from the headers.
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/grpc";
            response.Headers["grpc-status"] = ((int)ErrorMapping.ToGrpcStatus(kind)).ToString(CultureInfo.InvariantCulture);
            response.Headers["grpc-message"] = Uri.EscapeDataString(message);
            if (seconds is not null)
            {
                response.Headers[RetryAfterMetadata] = seconds;
            }

            await response.CompleteAsync();
            return;
        }

        // ApiErrorMiddleware writes the body in the route's shape; these headers survive its reset of the response.
        response.OnStarting(() =>
        {
            if (kind == ModelErrorKind.Unauthenticated)
            {
                response.Headers.WWWAuthenticate = "Bearer realm=\"carml\"";
            }

            if (seconds is not null)
            {
                response.Headers.RetryAfter = seconds;
            }

            return Task.CompletedTask;
        });
        throw new ModelException(kind, message);
    }
}

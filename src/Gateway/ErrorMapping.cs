using Carml.Orleans.Interfaces;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace Carml.Orleans.Gateway;

/// <summary>One table from failures to HTTP statuses and gRPC codes, so both protocols say the same thing.</summary>
public static partial class ErrorMapping
{
    public static int ToHttpStatus(ModelErrorKind kind) => kind switch
    {
        ModelErrorKind.InvalidArgument => StatusCodes.Status400BadRequest,
        ModelErrorKind.NotFound => StatusCodes.Status404NotFound,
        ModelErrorKind.AlreadyExists => StatusCodes.Status409Conflict,
        ModelErrorKind.PayloadTooLarge => StatusCodes.Status413PayloadTooLarge,
        ModelErrorKind.ResourceExhausted => StatusCodes.Status429TooManyRequests,
        ModelErrorKind.Unavailable => StatusCodes.Status503ServiceUnavailable,
        ModelErrorKind.DeadlineExceeded => StatusCodes.Status504GatewayTimeout,
        ModelErrorKind.FailedPrecondition => StatusCodes.Status400BadRequest,
        ModelErrorKind.Conflict => StatusCodes.Status409Conflict,
        ModelErrorKind.Unauthenticated => StatusCodes.Status401Unauthorized,
        ModelErrorKind.PermissionDenied => StatusCodes.Status403Forbidden,
        _ => StatusCodes.Status500InternalServerError,
    };

    public static StatusCode ToGrpcStatus(ModelErrorKind kind) => kind switch
    {
        ModelErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        ModelErrorKind.NotFound => StatusCode.NotFound,
        ModelErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ModelErrorKind.PayloadTooLarge or ModelErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        ModelErrorKind.Unavailable => StatusCode.Unavailable,
        ModelErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        ModelErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        ModelErrorKind.Conflict => StatusCode.FailedPrecondition,
        ModelErrorKind.Unauthenticated => StatusCode.Unauthenticated,
        ModelErrorKind.PermissionDenied => StatusCode.PermissionDenied,
        _ => StatusCode.Internal,
    };

    /// <summary>
    /// Classifies a failure: the caller's mistakes and known server conditions keep their kind; the cluster being
    /// unreachable is Unavailable; a timeout is DeadlineExceeded. Anything else is a server fault (null).
    /// </summary>
    public static ModelException? Classify(Exception exception) => exception switch
    {
        ModelException model => model,
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => new ModelException(
            ModelErrorKind.PayloadTooLarge, "The request body is larger than the server accepts (Carml:Gateway:MaxRequestBytes)."),
        // A JSON body that does not bind: the serializer's message names the path, line and byte of the bad value.
        BadHttpRequestException { InnerException: System.Text.Json.JsonException json } bad =>
            ModelException.InvalidArgument($"{bad.Message} {json.Message}"),
        BadHttpRequestException bad when QueryBinding(bad.Message) is { } query => ModelException.InvalidArgument(query),
        BadHttpRequestException bad => ModelException.InvalidArgument(bad.Message),
        Core.ContentTooLargeException tooLarge => new ModelException(ModelErrorKind.PayloadTooLarge, tooLarge.Message),
        InvalidDataException malformed => ModelException.InvalidArgument($"The request body is malformed: {malformed.Message}"),
        // ASP.NET Core's multipart reader throws a plain IOException when the body ends before its closing boundary (or
        // never had one): the client's body is malformed. Disk and network faults elsewhere stay server faults.
        IOException multipart when IsMultipartReader(multipart) =>
            ModelException.InvalidArgument("The multipart body is malformed or ended before its closing boundary."),
        SiloUnavailableException or OrleansMessageRejectionException =>
            new ModelException(ModelErrorKind.Unavailable, "The cluster cannot serve the request right now; retry shortly."),
        TimeoutException => new ModelException(ModelErrorKind.DeadlineExceeded, "The request timed out inside the cluster."),
        _ when Routing.FailoverClassifier.IsSiloGone(exception) =>
            new ModelException(ModelErrorKind.Unavailable, "The cluster cannot serve the request right now; retry shortly."),
        _ => null,
    };

    /// <summary>
    /// ASP.NET Core's message for a query value that does not convert names the C# parameter and type
    /// (<c>Failed to bind parameter "Nullable&lt;int&gt; pageSize" from "abc".</c>); callers know the query name
    /// (<c>page_size</c>) and want to hear what is expected.
    /// </summary>
    internal static string? QueryBinding(string message)
    {
        var match = BindingFailure().Match(message);
        if (!match.Success)
        {
            return null;
        }

        var type = match.Groups["type"].Value;
        var expected = type.Contains("int", StringComparison.OrdinalIgnoreCase) || type.Contains("long", StringComparison.OrdinalIgnoreCase) ? "a whole number"
            : type.Contains("DateTime", StringComparison.Ordinal) ? "a date and time (ISO 8601, e.g. 2026-11-23T18:00:00Z)"
            : type.Contains("bool", StringComparison.OrdinalIgnoreCase) ? "true or false"
            : "a " + type;
        var name = SnakeCase().Replace(match.Groups["name"].Value, "$1_$2").ToLowerInvariant();
        return $"Query parameter '{name}' must be {expected}, not '{match.Groups["value"].Value}'.";
    }

    [System.Text.RegularExpressions.GeneratedRegex("""^Failed to bind parameter "(?<type>.+) (?<name>\w+)" from "(?<value>.*)"\.$""")]
    private static partial System.Text.RegularExpressions.Regex BindingFailure();

    [System.Text.RegularExpressions.GeneratedRegex("([a-z0-9])([A-Z])")]
    private static partial System.Text.RegularExpressions.Regex SnakeCase();

    private static bool IsMultipartReader(IOException exception) =>
        exception.TargetSite?.DeclaringType?.FullName?.StartsWith("Microsoft.AspNetCore.WebUtilities.Multipart", StringComparison.Ordinal) == true;
}

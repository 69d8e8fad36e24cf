using Carml.Orleans.Interfaces;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace Carml.Orleans.Gateway;

/// <summary>One table from failures to HTTP statuses and gRPC codes, so both protocols say the same thing.</summary>
public static class ErrorMapping
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

    private static bool IsMultipartReader(IOException exception) =>
        exception.TargetSite?.DeclaringType?.FullName?.StartsWith("Microsoft.AspNetCore.WebUtilities.Multipart", StringComparison.Ordinal) == true;
}

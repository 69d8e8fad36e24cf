using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace Carml.Orleans.Gateway;

/// <summary>
/// Turns failures into precise responses: KServe routes (<c>/v2</c>) answer <c>{"error": "..."}</c> as the protocol
/// defines; the management API answers RFC 7807 problem details, with every problem listed. Only server faults are 500.
/// </summary>
public sealed partial class ApiErrorMiddleware(RequestDelegate next, ILogger<ApiErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
            if (!context.Response.HasStarted && RoutingRefusal(context) is { } refusal)
            {
                await WriteAsync(context, context.Response.StatusCode, refusal, []);
            }
        }
        catch (Exception exception) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            var classified = ErrorMapping.Classify(exception);
            int status;
            string message;
            string[] problems;
            if (classified is null)
            {
                LogUnhandled(logger, context.Request.Method, context.Request.Path, exception);
                status = StatusCodes.Status500InternalServerError;
                message = "The server failed to handle the request; the failure is logged.";
                problems = [];
            }
            else
            {
                status = ErrorMapping.ToHttpStatus(classified.Kind);
                message = classified.Message;
                problems = classified.Problems;
            }

            context.Response.Clear();
            if (status == StatusCodes.Status413PayloadTooLarge)
            {
                // The unread body is not drained: tell the client this connection ends so it does not reuse it.
                context.Response.Headers.Connection = "close";
            }

            await WriteAsync(context, status, message, problems);
        }
    }

    /// <summary>
    /// Routing answers a wrong method (405) or a body type no endpoint accepts (415) with a bare status; say what was
    /// wrong in the same shape as every other client mistake. Endpoints that wrote their own answer are left alone.
    /// </summary>
    private static string? RoutingRefusal(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        if (response.ContentLength is > 0 || response.ContentType is not null)
        {
            return null;
        }

        return response.StatusCode switch
        {
            StatusCodes.Status415UnsupportedMediaType => string.IsNullOrEmpty(request.ContentType)
                ? $"{request.Method} {request.Path} needs a JSON body (Content-Type: application/json)."
                : $"Content-Type '{request.ContentType}' is not accepted by {request.Method} {request.Path}: send application/json.",
            StatusCodes.Status405MethodNotAllowed => response.Headers.Allow.Count > 0
                ? $"{request.Method} is not allowed on {request.Path}; allowed: {response.Headers.Allow}."
                : $"{request.Method} is not allowed on {request.Path}.",
            _ => null,
        };
    }

    private static async Task WriteAsync(HttpContext context, int status, string message, string[] problems)
    {
        context.Response.StatusCode = status;
        if (context.Request.Path.StartsWithSegments("/v2"))
        {
            await context.Response.WriteAsJsonAsync(new KServeError(message), context.RequestAborted);
            return;
        }

        var problem = new ProblemDetails
        {
            Status = status,
            Title = ReasonPhrase(status),
            Detail = message,
            Instance = context.Request.Path,
        };
        if (problems.Length > 0)
        {
            problem.Extensions["problems"] = problems;
        }

        await context.Response.WriteAsJsonAsync(problem, (JsonSerializerOptions?)null, "application/problem+json", context.RequestAborted);
    }

    private static string ReasonPhrase(int status) =>
        Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Error, Message = "Unhandled failure on {Method} {Path}")]
    private static partial void LogUnhandled(ILogger logger, string method, string path, Exception exception);
}

/// <summary>The KServe v2 error body.</summary>
public sealed record KServeError(string Error);

using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Carml.Orleans.Gateway.KServe;

/// <summary>Maps failures to gRPC status codes with the same table as HTTP; only server faults become INTERNAL.</summary>
public sealed partial class GrpcErrorInterceptor(ILogger<GrpcErrorInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request,
        ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (RpcException)
        {
            throw;
        }
        catch (Exception exception) when (ErrorMapping.Classify(exception) is { } classified)
        {
            throw new RpcException(new Status(ErrorMapping.ToGrpcStatus(classified.Kind), classified.Message));
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            LogUnhandled(logger, context.Method, exception);
            throw new RpcException(new Status(StatusCode.Internal, "The server failed to handle the request; the failure is logged."));
        }
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Error, Message = "Unhandled failure in {Method}")]
    private static partial void LogUnhandled(ILogger logger, string method, Exception exception);
}

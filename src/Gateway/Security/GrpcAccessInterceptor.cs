using Carml.Orleans.Gateway.KServe.Grpc;
using Carml.Orleans.Gateway.Predictor;
using Carml.Orleans.Gateway.Predictor.Grpc;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Carml.Orleans.Gateway.Security;

/// <summary>
/// The gRPC face of <see cref="ModelAuthorizer"/> and <see cref="InferenceLimits"/>: every call that names a model (or a
/// predictor of one) needs read on it; inference requests are held to the tensor limits. Runs inside
/// <see cref="KServe.GrpcErrorInterceptor"/>, which turns refusals into NOT_FOUND / PERMISSION_DENIED / INVALID_ARGUMENT.
/// </summary>
public sealed class GrpcAccessInterceptor(ModelAuthorizer authorizer, PredictorService predictors, InferenceLimits limits) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        // Only calls that name a model need the caller; health calls reach here without one.
        CarmlPrincipal Caller() => context.GetHttpContext().Principal();
        switch (request)
        {
            case ModelInferRequest infer:
                await authorizer.RequireReadAsync(Caller(), infer.ModelName, infer.ModelVersion);
                limits.Check(infer);
                break;
            case ModelMetadataRequest metadata:
                await authorizer.RequireReadAsync(Caller(), metadata.Name, metadata.Version);
                break;
            case ModelReadyRequest ready:
                await authorizer.RequireReadAsync(Caller(), ready.Name, ready.Version);
                break;
            case PredictorOpenRequest open:
                await authorizer.RequireReadAsync(Caller(), open.ModelName, open.ModelVersion);
                break;
            case PredictorCloseRequest close:
                await RequirePredictorAsync(Caller(), close.PredictorId);
                break;
            case ResetRequest reset:
                await RequirePredictorAsync(Caller(), reset.PredictorId);
                break;
            case PredictImagesRequest images:
                await RequirePredictorAsync(Caller(), images.PredictorId);
                break;
            case PredictUrlsRequest urls:
                await RequirePredictorAsync(Caller(), urls.PredictorId);
                break;
            case PredictDatasetRequest dataset:
                await RequirePredictorAsync(Caller(), dataset.PredictorId);
                break;
        }

        return await continuation(request, context);
    }

    private async Task RequirePredictorAsync(CarmlPrincipal caller, string id)
    {
        if (!caller.Admin)
        {
            await authorizer.RequireReadAsync(caller, (await predictors.GetAsync(id)).Model.Name);
        }
    }
}

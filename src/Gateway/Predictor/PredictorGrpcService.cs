using Carml.Orleans.Gateway.Predictor.Grpc;
using Carml.Orleans.Interfaces;
using Google.Protobuf;
using Grpc.Core;

namespace Carml.Orleans.Gateway.Predictor;

/// <summary>The <c>carml.Predict</c> gRPC service: maps messages to <see cref="PredictorService"/> and back.</summary>
public sealed class PredictorGrpcService(PredictorService predictors) : Predict.PredictBase
{
    public override async Task<Grpc.Predictor> Open(PredictorOpenRequest request, ServerCallContext context) =>
        ToMessage(await predictors.OpenAsync(request.ModelName, request.ModelVersion, ToSettings(request.Options)));

    public override async Task<PredictorCloseResponse> Close(PredictorCloseRequest request, ServerCallContext context)
    {
        await predictors.CloseAsync(request.PredictorId);
        return new PredictorCloseResponse();
    }

    public override async Task<Grpc.Predictor> Reset(ResetRequest request, ServerCallContext context) =>
        ToMessage(await predictors.ResetAsync(request.PredictorId));

    public override async Task<FeaturesResponse> Images(PredictImagesRequest request, ServerCallContext context)
    {
        var images = request.Images
            .Select((image, i) => new PredictorInput(string.IsNullOrEmpty(image.Id) ? i.ToString(System.Globalization.CultureInfo.InvariantCulture) : image.Id, image.Data.ToByteArray()))
            .ToArray();
        return ToMessage(await predictors.ImagesAsync(request.PredictorId, images, request.RequestId, context.CancellationToken));
    }

    public override async Task<FeaturesResponse> URLs(PredictUrlsRequest request, ServerCallContext context) =>
        ToMessage(await predictors.UrlsAsync(request.PredictorId, request.Urls, request.RequestId, context.CancellationToken));

    public override async Task<FeaturesResponse> Dataset(PredictDatasetRequest request, ServerCallContext context)
    {
        var (response, total) = await predictors.DatasetAsync(
            request.PredictorId, request.Dataset, request.Offset, request.Limit, request.RequestId, context.CancellationToken);
        var message = ToMessage(response);
        message.DatasetTotal = total;
        return message;
    }

    private static PredictorSettings? ToSettings(PredictionOptions? options) => options is null
        ? null
        : new PredictorSettings
        {
            BatchSize = options.BatchSize,
            FeatureLimit = options.FeatureLimit,
            TraceLevel = options.ExecutionOptions?.TraceLevel ?? string.Empty,
            Device = options.ExecutionOptions?.Device ?? string.Empty,
        };

    private static Grpc.Predictor ToMessage(PredictorInfo predictor) => new()
    {
        Id = predictor.Id,
        ModelName = predictor.Model.Name,
        ModelVersion = predictor.Model.Version,
        Options = new PredictionOptions
        {
            BatchSize = predictor.Settings.BatchSize,
            FeatureLimit = predictor.Settings.FeatureLimit,
            ExecutionOptions = new ExecutionOptions { TraceLevel = predictor.Settings.TraceLevel, Device = predictor.Settings.Device },
        },
        OpenedAtUnixMs = predictor.OpenedAt.ToUnixTimeMilliseconds(),
        ExpiresAtUnixMs = predictor.ExpiresAt.ToUnixTimeMilliseconds(),
        Generation = predictor.Generation,
        Usage = new Grpc.PredictorUsage
        {
            Requests = predictor.Usage.Requests,
            Inputs = predictor.Usage.Inputs,
            Failures = predictor.Usage.Failures,
            DecodeUs = predictor.Usage.DecodeMicroseconds,
            PreprocessUs = predictor.Usage.PreprocessMicroseconds,
            InferUs = predictor.Usage.InferMicroseconds,
            PostprocessUs = predictor.Usage.PostprocessMicroseconds,
            LastRequestId = predictor.Usage.LastRequestId ?? string.Empty,
        },
    };

    private static FeaturesResponse ToMessage(PredictionResponse response)
    {
        var message = new FeaturesResponse
        {
            RequestId = response.RequestId,
            TraceId = response.TraceId,
            PredictorId = response.PredictorId,
            ModelName = response.Model,
            ModelVersion = response.Version,
            Timings = new Timings
            {
                FetchUs = response.Timings.FetchUs,
                DecodeUs = response.Timings.DecodeUs,
                PreprocessUs = response.Timings.PreprocessUs,
                InferUs = response.Timings.InferUs,
                PostprocessUs = response.Timings.PostprocessUs,
                TotalUs = response.Timings.TotalUs,
            },
        };
        foreach (var result in response.Results)
        {
            var item = new FeatureResponse { InputId = result.InputId };
            item.Features.AddRange(result.Features.Select(f => new Feature { Index = f.Index, Label = f.Label, Probability = f.Probability }));
            foreach (var output in result.Outputs)
            {
                var tensor = new RawTensor { Name = output.Name, Datatype = output.Datatype, Data = ByteString.CopyFrom(output.Data) };
                tensor.Shape.AddRange(output.Shape);
                item.Outputs.Add(tensor);
            }

            if (result.Timings is { } timings)
            {
                item.Timings = new Timings { FetchUs = timings.FetchUs, DecodeUs = timings.DecodeUs, PreprocessUs = timings.PreprocessUs };
            }

            message.Responses.Add(item);
        }

        return message;
    }
}

using Carml.Orleans.Gateway.Predictor.Grpc;
using Google.Protobuf;
using Grpc.Core;
using SkiaSharp;

namespace Carml.Orleans.Tests;

/// <summary>The <c>carml.Predict</c> gRPC service with a real Grpc.Net.Client on the PP-OCR orientation classifier.</summary>
[Collection(PredictorCollection.Name)]
public sealed class PredictorGrpcTests(PredictorFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Predict.PredictClient Client => new(fixture.Gateway.Channel);

    [Fact]
    public async Task Grpc_client_opens_predicts_upright_and_rotated_lines_resets_and_closes()
    {
        await fixture.EnsureOrientationModelAsync();
        var predictor = await Client.OpenAsync(new PredictorOpenRequest
        {
            ModelName = PredictorFixture.OrientationModelName,
            Options = new PredictionOptions { BatchSize = 2, ExecutionOptions = new ExecutionOptions { TraceLevel = "model", Device = "cpu" } },
        }, cancellationToken: Ct);
        var request = new PredictImagesRequest { PredictorId = predictor.Id, RequestId = "grpc-1" };
        request.Images.Add(new ImageInput { Id = "upright", Data = ByteString.CopyFrom(TextLineImages.Render("invoice total 4521", upsideDown: false)) });
        request.Images.Add(new ImageInput { Id = "rotated", Data = ByteString.CopyFrom(TextLineImages.Render("invoice total 4521", upsideDown: true)) });

        var response = await Client.ImagesAsync(request, cancellationToken: Ct);
        var reset = await Client.ResetAsync(new ResetRequest { PredictorId = predictor.Id }, cancellationToken: Ct);
        await Client.CloseAsync(new PredictorCloseRequest { PredictorId = predictor.Id }, cancellationToken: Ct);
        var afterClose = await Assert.ThrowsAsync<RpcException>(() => Client.ImagesAsync(request, cancellationToken: Ct).ResponseAsync);

        Assert.Equal("2.0", predictor.ModelVersion);
        Assert.Equal("grpc-1", response.RequestId);
        Assert.Equal(["upright", "rotated"], response.Responses.Select(r => r.InputId));
        Assert.Equal(["0", "180"], response.Responses.Select(r => r.Features[0].Label));
        Assert.All(response.Responses, r => Assert.InRange(r.Features[0].Probability, 0.5, 1.0));
        Assert.True(response.Timings.InferUs > 0 && response.Timings.DecodeUs > 0 && response.Timings.PreprocessUs > 0);
        Assert.Equal(0, reset.Usage.Requests);
        Assert.Equal(1, reset.Generation);
        Assert.Equal(StatusCode.NotFound, afterClose.StatusCode);
    }

    [Fact]
    public async Task Grpc_maps_bad_inputs_to_invalid_argument_not_found_failed_precondition_and_resource_exhausted()
    {
        await fixture.EnsureOrientationModelAsync();
        var orientation = await Client.OpenAsync(new PredictorOpenRequest { ModelName = PredictorFixture.OrientationModelName }, cancellationToken: Ct);
        var tabular = await Client.OpenAsync(new PredictorOpenRequest { ModelName = PredictorFixture.TabularModelName }, cancellationToken: Ct);

        var notAnImage = await ImagesStatusAsync(orientation.Id, "plain words, not the bytes of any picture"u8.ToArray());
        var gigantic = await ImagesStatusAsync(orientation.Id, TestImages.PngHeaderOnly(40000, 40000));
        var unknown = await ImagesStatusAsync("0123456789abcdef0123456789abcdef", TestImages.SolidPng(4, 4, SKColors.White));
        var noImages = await ImagesStatusAsync(tabular.Id, TestImages.SolidPng(4, 4, SKColors.White));
        var url = await Assert.ThrowsAsync<RpcException>(() => Client.URLsAsync(
            new PredictUrlsRequest { PredictorId = orientation.Id, Urls = { "http://192.168.0.1/a.png" } }, cancellationToken: Ct).ResponseAsync);
        var dataset = await Assert.ThrowsAsync<RpcException>(() => Client.DatasetAsync(
            new PredictDatasetRequest { PredictorId = orientation.Id, Dataset = "no-such-dataset" }, cancellationToken: Ct).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, notAnImage);
        Assert.Equal(StatusCode.ResourceExhausted, gigantic);
        Assert.Equal(StatusCode.NotFound, unknown);
        Assert.Equal(StatusCode.FailedPrecondition, noImages);
        Assert.Equal(StatusCode.InvalidArgument, url.StatusCode);
        Assert.Contains("private", url.Status.Detail);
        Assert.Equal(StatusCode.NotFound, dataset.StatusCode);
    }

    private async Task<StatusCode> ImagesStatusAsync(string predictor, byte[] image)
    {
        var request = new PredictImagesRequest { PredictorId = predictor };
        request.Images.Add(new ImageInput { Data = ByteString.CopyFrom(image) });
        var e = await Assert.ThrowsAsync<RpcException>(() => Client.ImagesAsync(request, cancellationToken: Ct).ResponseAsync);
        return e.StatusCode;
    }
}

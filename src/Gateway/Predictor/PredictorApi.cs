using System.Globalization;
using Carml.Orleans.Gateway.Security;
using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Carml.Orleans.Gateway.Predictor;

/// <summary>Opening a predictor: a model name, an optional version (empty or <c>latest</c> = highest) and options.</summary>
public sealed record OpenPredictorDto(string? Model, string? Version, PredictorOptionsDto? Options);

public sealed record PredictorOptionsDto(int BatchSize = 0, int FeatureLimit = 0, string? TraceLevel = null, string? Device = null);

public sealed record PredictorDto(
    string Id,
    string Model,
    string Version,
    string? RequestedVersion,
    PredictorOptionsDto Options,
    DateTimeOffset OpenedAt,
    DateTimeOffset LastUsedAt,
    DateTimeOffset ExpiresAt,
    long Generation,
    PredictorUsage Usage)
{
    public static PredictorDto From(PredictorInfo p) => new(
        p.Id, p.Model.Name, p.Model.Version, p.RequestedVersion,
        new PredictorOptionsDto(p.Settings.BatchSize, p.Settings.FeatureLimit, p.Settings.TraceLevel, p.Settings.Device),
        p.OpenedAt, p.LastUsedAt, p.ExpiresAt, p.Generation, p.Usage);
}

/// <summary>Images as JSON: each base64-encoded, with an optional id echoed in the answer.</summary>
public sealed record ImagesDto(IReadOnlyList<ImageDto>? Images, string? RequestId);

public sealed record ImageDto(string? Id, byte[]? Data);

public sealed record UrlsDto(IReadOnlyList<string>? Urls, string? RequestId);

public sealed record DatasetRequestDto(string? Dataset, int Offset = 0, int Limit = 0, string? RequestId = null);

public sealed record DatasetPredictionDto(int DatasetTotal, PredictionResponse Prediction);

/// <summary>
/// The predictor API over REST: <c>/api/predictors</c> to open, <c>/{id}</c> to read or close, and
/// <c>/{id}/images</c> (JSON with base64 images, multipart files, or one raw <c>image/*</c> body), <c>/{id}/urls</c>,
/// <c>/{id}/dataset</c>, <c>/{id}/reset</c>.
/// </summary>
public static class PredictorApi
{
    public static IEndpointRouteBuilder MapPredictors(this IEndpointRouteBuilder endpoints)
    {
        var predictors = endpoints.MapGroup("/api/predictors").WithTags("Predictors").RequirePredictorAccess();
        predictors.MapPost("/", OpenAsync).WithSummary("Open a predictor on a model version.");
        predictors.MapGet("/{id}", GetAsync).WithSummary("A predictor: model, options, usage and when it expires.");
        predictors.MapDelete("/{id}", CloseAsync).WithSummary("Close a predictor.");
        predictors.MapPost("/{id}/reset", ResetAsync).WithSummary("Clear usage and cached labels, re-resolve the model version.");
        predictors.MapPost("/{id}/images", ImagesAsync).WithSummary("Predict on images: JSON (base64), multipart files, or one raw image body.");
        predictors.MapPost("/{id}/urls", UrlsAsync).WithSummary("Predict on images fetched from URLs.");
        predictors.MapPost("/{id}/dataset", DatasetAsync).WithSummary("Predict on a page of a registered dataset's images.");
        return endpoints;
    }

    private static async Task<Created<PredictorDto>> OpenAsync(OpenPredictorDto? request, PredictorService predictors)
    {
        var options = request?.Options;
        var settings = options is null
            ? null
            : new PredictorSettings
            {
                BatchSize = options.BatchSize,
                FeatureLimit = options.FeatureLimit,
                TraceLevel = options.TraceLevel ?? string.Empty,
                Device = options.Device ?? string.Empty,
            };
        var predictor = await predictors.OpenAsync(request?.Model, request?.Version, settings);
        return TypedResults.Created($"/api/predictors/{predictor.Id}", PredictorDto.From(predictor));
    }

    private static async Task<Ok<PredictorDto>> GetAsync(string id, PredictorService predictors) =>
        TypedResults.Ok(PredictorDto.From(await predictors.GetAsync(id)));

    private static async Task<NoContent> CloseAsync(string id, PredictorService predictors)
    {
        await predictors.CloseAsync(id);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<PredictorDto>> ResetAsync(string id, PredictorService predictors) =>
        TypedResults.Ok(PredictorDto.From(await predictors.ResetAsync(id)));

    private static async Task<Ok<PredictionResponse>> ImagesAsync(string id, HttpRequest request, PredictorService predictors, CancellationToken cancellationToken)
    {
        var (images, requestId) = await ReadImagesAsync(request, cancellationToken);
        return TypedResults.Ok(await predictors.ImagesAsync(id, images, requestId, cancellationToken));
    }

    private static async Task<Ok<PredictionResponse>> UrlsAsync(string id, UrlsDto? request, PredictorService predictors, CancellationToken cancellationToken) =>
        TypedResults.Ok(await predictors.UrlsAsync(id, request?.Urls ?? [], request?.RequestId, cancellationToken));

    private static async Task<Ok<DatasetPredictionDto>> DatasetAsync(
        string id, DatasetRequestDto? request, PredictorService predictors, CancellationToken cancellationToken)
    {
        var (prediction, total) = await predictors.DatasetAsync(
            id, request?.Dataset, request?.Offset ?? 0, request?.Limit ?? 0, request?.RequestId, cancellationToken);
        return TypedResults.Ok(new DatasetPredictionDto(total, prediction));
    }

    private static async Task<(IReadOnlyList<PredictorInput> Images, string? RequestId)> ReadImagesAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var contentType = request.ContentType ?? string.Empty;
        if (request.HasFormContentType)
        {
            var form = await request.ReadFormAsync(cancellationToken);
            var images = new List<PredictorInput>();
            foreach (var file in form.Files)
            {
                using var buffer = new MemoryStream();
                await file.CopyToAsync(buffer, cancellationToken);
                images.Add(new PredictorInput(string.IsNullOrEmpty(file.FileName) ? Position(images.Count) : file.FileName, buffer.ToArray()));
            }

            return (images, form["request_id"].FirstOrDefault());
        }

        if (contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            ImagesDto? body;
            try
            {
                body = await request.ReadFromJsonAsync<ImagesDto>(cancellationToken);
            }
            catch (System.Text.Json.JsonException e)
            {
                throw ModelException.InvalidArgument($"The JSON body is malformed (images[].data must be base64): {e.Message}");
            }

            var images = (body?.Images ?? []).Select((image, i) => new PredictorInput(
                string.IsNullOrEmpty(image.Id) ? Position(i) : image.Id,
                image.Data ?? throw ModelException.InvalidArgument($"images[{i}].data is required: the image bytes, base64-encoded."))).ToArray();
            return (images, body?.RequestId);
        }

        if (contentType.StartsWith("image/", StringComparison.OrdinalIgnoreCase) || contentType.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase))
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, cancellationToken);
            return ([new PredictorInput("0", buffer.ToArray())], request.Headers["X-Request-Id"].FirstOrDefault());
        }

        throw new ModelException(ModelErrorKind.InvalidArgument,
            $"Content-Type '{contentType}' is not accepted: send application/json ({{\"images\": [{{\"data\": base64}}]}}), multipart/form-data files, or one image/* body.");
    }

    private static string Position(int index) => index.ToString(CultureInfo.InvariantCulture);
}

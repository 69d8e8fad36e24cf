using System.Diagnostics;
using Carml.Orleans.Core;
using Carml.Orleans.Core.Telemetry;
using Carml.Orleans.Gateway.Observability;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Preprocessing;
using Microsoft.Extensions.Options;
using SkiaSharp;

namespace Carml.Orleans.Gateway.Predictor;

/// <summary>
/// The CarML predictor API behind both protocols: open a predictor on a model version, then send images, URLs or a
/// dataset; each input is decoded and pre-processed as the manifest's image input says, run in batches of the
/// predictor's batch size on the model's replica, and post-processed into labelled features. The predictor itself
/// (model, settings, usage, expiry) lives in <see cref="IPredictorGrain"/>.
/// </summary>
public sealed partial class PredictorService(
    IGrainFactory grains,
    ModelRouter router,
    ImageFetcher fetcher,
    ModelLabels labels,
    IOptions<PredictorOptions> options,
    ILogger<PredictorService> logger)
{
    private static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif" };

    private readonly PredictorOptions _options = options.Value;

    /// <summary>Predictor ids are 32 lowercase hex digits; anything else names no predictor.</summary>
    public static bool IsPredictorId(string id) => HexIds.IsValid(id);

    public async Task<PredictorInfo> OpenAsync(string? model, string? version, PredictorSettings? requested)
    {
        if (string.IsNullOrEmpty(model))
        {
            throw ModelException.InvalidArgument("model is required: the name of a registered model.");
        }

        var settings = Validate(requested ?? new PredictorSettings());
        var route = await router.ResolveAsync(model, version);
        var id = Guid.NewGuid().ToString("N");
        var predictor = await grains.GetGrain<IPredictorGrain>(id).OpenAsync(route.Id, version, settings);
        LogOpened(logger, id, route.Id.Name, route.Id.Version);
        return predictor;
    }

    public Task<PredictorInfo> GetAsync(string id) => Grain(id).GetAsync();

    public async Task CloseAsync(string id)
    {
        if (!await Grain(id).CloseAsync())
        {
            throw UnknownPredictor(id);
        }
    }

    /// <summary>Clears usage, forgets cached label files and re-resolves the model version (a <c>latest</c> predictor moves on).</summary>
    public async Task<PredictorInfo> ResetAsync(string id)
    {
        var grain = Grain(id);
        var predictor = await grain.GetAsync();
        router.Invalidate(predictor.Model.Name);
        labels.Forget(predictor.Model);
        var model = await router.ResolveVersionAsync(predictor.Model.Name, predictor.RequestedVersion);
        return await grain.ResetAsync(model);
    }

    public async Task<PredictionResponse> ImagesAsync(string id, IReadOnlyList<PredictorInput> images, string? requestId, CancellationToken cancellationToken)
    {
        CheckCount(images.Count, "images");
        for (var i = 0; i < images.Count; i++)
        {
            if (images[i].Bytes.LongLength > _options.MaxImageBytes)
            {
                throw new ModelException(ModelErrorKind.PayloadTooLarge,
                    $"Image {i} ('{images[i].Id}') has {images[i].Bytes.LongLength} bytes, more than {_options.MaxImageBytes} (Carml:Predictors:MaxImageBytes).");
            }
        }

        return await PredictAsync(id, images.Count, (i, _) => Task.FromResult(images[i]), requestId, cancellationToken);
    }

    public async Task<PredictionResponse> UrlsAsync(string id, IReadOnlyList<string> urls, string? requestId, CancellationToken cancellationToken)
    {
        CheckCount(urls.Count, "urls");
        return await PredictAsync(id, urls.Count, async (i, ct) => new PredictorInput(urls[i], await fetcher.FetchAsync(urls[i], ct)), requestId, cancellationToken);
    }

    /// <summary>The images of a registered dataset, sorted by path, from <paramref name="offset"/> for at most <paramref name="limit"/> files.</summary>
    public async Task<(PredictionResponse Response, int Total)> DatasetAsync(
        string id, string? dataset, int offset, int limit, string? requestId, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(dataset))
        {
            throw ModelException.InvalidArgument("dataset is required: the name of a registered dataset.");
        }

        if (offset < 0 || limit < 0)
        {
            throw ModelException.InvalidArgument("offset and limit must not be negative.");
        }

        await Grain(id).GetAsync();
        var info = await grains.GetGrain<IDatasetGrain>(dataset).GetAsync()
            ?? throw ModelException.NotFound($"Dataset '{dataset}' is not registered.");
        var files = info.Files.Count > 0
            ? info.Files.Where(f => ImageExtensions.Contains(Path.GetExtension(f))).Select(f => (Id: f, Path: Path.Combine(info.Location, f))).ToArray()
            : ImageExtensions.Contains(Path.GetExtension(info.Origin ?? info.Location)) ? [(Id: info.Name, Path: info.Location)] : [];
        if (files.Length == 0)
        {
            throw new ModelException(ModelErrorKind.FailedPrecondition, $"Dataset '{dataset}' has no image files ({string.Join(", ", ImageExtensions)}).");
        }

        var page = files.Skip(offset).Take(limit == 0 ? _options.MaxInputsPerRequest : Math.Min(limit, _options.MaxInputsPerRequest)).ToArray();
        if (page.Length == 0)
        {
            throw ModelException.InvalidArgument($"offset {offset} is past the dataset's {files.Length} images.");
        }

        var response = await PredictAsync(id, page.Length, async (i, ct) =>
        {
            var length = new FileInfo(page[i].Path).Length;
            if (length > _options.MaxImageBytes)
            {
                throw new ModelException(ModelErrorKind.PayloadTooLarge, $"Dataset file '{page[i].Id}' has {length} bytes, more than {_options.MaxImageBytes}.");
            }

            return new PredictorInput(page[i].Id, await File.ReadAllBytesAsync(page[i].Path, ct));
        }, requestId, cancellationToken);
        return (response, files.Length);
    }

    private async Task<PredictionResponse> PredictAsync(
        string id, int count, Func<int, CancellationToken, Task<PredictorInput>> source, string? requestId, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        requestId = string.IsNullOrEmpty(requestId) ? Guid.NewGuid().ToString("N") : requestId;
        var traceId = Activity.Current?.TraceId.ToHexString() ?? ActivityTraceId.CreateRandom().ToHexString();
        var grain = Grain(id);
        var predictor = await grain.UseAsync();
        CarmlTraceLevels.Raise(CarmlTraceLevels.Parse(predictor.Settings.TraceLevel, "trace_level"));
        var route = await router.ResolveAsync(predictor.Model.Name, predictor.Model.Version);
        var plan = PredictorPlan.For(route.Manifest);
        var classification = route.Manifest.Outputs.FirstOrDefault(o => o.Classification is not null);
        var labelList = classification is null ? [] : await labels.GetAsync(route.Manifest, classification, cancellationToken);
        var full = predictor.Settings.TraceLevel == PredictorTraceLevels.Full;
        var batch = Math.Max(1, Math.Min(predictor.Settings.BatchSize, plan.MaxBatch));

        // Inputs are fetched ahead (a few at a time, for URLs) and then decoded in order.
        var fetchTicks = new long[count];
        using var fetchLimit = new SemaphoreSlim(_options.Urls.MaxConcurrency);
        using var fetching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var fetches = Enumerable.Range(0, count).Select(async i =>
        {
            await fetchLimit.WaitAsync(fetching.Token);
            try
            {
                var t0 = Stopwatch.GetTimestamp();
                var input = await source(i, fetching.Token);
                fetchTicks[i] = Stopwatch.GetTimestamp() - t0;
                return input;
            }
            finally
            {
                fetchLimit.Release();
            }
        }).ToArray();

        var results = new PredictionResult[count];
        long decode = 0, preprocess = 0, infer = 0, postprocess = 0;
        var writer = plan.Writer;
        try
        {
            for (var first = 0; first < count; first += batch)
            {
                var n = Math.Min(batch, count - first);
                var buffer = new byte[(long)n * writer.BytesPerImage];
                var inputs = new PredictorInput[n];
                var perInput = new (long Decode, long Preprocess)[n];
                using (var span = PredictorSpans.StartPreprocess(route.Id, n))
                {
                    for (var k = 0; k < n; k++)
                    {
                        var index = first + k;
                        inputs[k] = await fetches[index];
                        var t0 = Stopwatch.GetTimestamp();
                        using SKBitmap bitmap = ImageDecoder.Decode(inputs[k].Bytes, new ImageLimits { MaxPixels = _options.MaxImagePixels }, $"Input {index} ('{inputs[k].Id}')");
                        var t1 = Stopwatch.GetTimestamp();
                        writer.Write(bitmap, buffer.AsSpan(k * writer.BytesPerImage, writer.BytesPerImage));
                        var t2 = Stopwatch.GetTimestamp();
                        perInput[k] = (t1 - t0, t2 - t1);
                        decode += t1 - t0;
                        preprocess += t2 - t1;
                    }

                    PredictorSpans.DescribeInputs(span, inputs);
                }

                var tensor = new InferenceTensor(writer.Input.Name, writer.Input.Datatype, writer.Shape(n), buffer);
                var t3 = Stopwatch.GetTimestamp();
                var response = await router.InferAsync(route.Id.Name, route.Id.Version, new InferenceRequest([tensor]) { Id = requestId });
                var t4 = Stopwatch.GetTimestamp();
                using var postprocessSpan = PredictorSpans.StartPostprocess(route.Id, n);
                var features = classification is null
                    ? null
                    : ClassificationDecoder.Decode(
                        response.Outputs.FirstOrDefault(o => o.Name == classification.Name)
                            ?? throw new ModelException(ModelErrorKind.FailedPrecondition, $"The model did not return its classification output '{classification.Name}'."),
                        classification.Classification!,
                        labelList,
                        predictor.Settings.FeatureLimit > 0 ? predictor.Settings.FeatureLimit : classification.Classification!.FeatureLimit);
                for (var k = 0; k < n; k++)
                {
                    var raw = response.Outputs.Where(o => o.Name != classification?.Name).Select(o => Slice(o, k, n)).ToArray();
                    results[first + k] = new PredictionResult(
                        inputs[k].Id,
                        features?[k] ?? [],
                        raw,
                        full ? new InputTimings(Us(fetchTicks[first + k]), Us(perInput[k].Decode), Us(perInput[k].Preprocess)) : null);
                }

                infer += t4 - t3;
                postprocess += Stopwatch.GetTimestamp() - t4;
            }
        }
        catch
        {
            await grain.RecordAsync(new PredictorUsage { Requests = 1, Failures = 1, LastRequestId = requestId });
            throw;
        }
        finally
        {
            // After a failure the remaining fetches are of no use: stop them, and let them end before the semaphore
            // and token they use are disposed. Their own errors are moot next to the one already being reported.
            await fetching.CancelAsync();
            try
            {
                await Task.WhenAll(fetches);
            }
            catch (Exception) when (fetches.Any(f => !f.IsCompletedSuccessfully))
            {
            }
        }

        var timings = new PredictionTimings(Us(fetchTicks.Sum()), Us(decode), Us(preprocess), Us(infer), Us(postprocess), Us(Stopwatch.GetTimestamp() - started));
        await grain.RecordAsync(new PredictorUsage
        {
            Requests = 1,
            Inputs = count,
            DecodeMicroseconds = timings.DecodeUs,
            PreprocessMicroseconds = timings.PreprocessUs,
            InferMicroseconds = timings.InferUs,
            PostprocessMicroseconds = timings.PostprocessUs,
            LastRequestId = requestId,
        });
        return new PredictionResponse(requestId, traceId, id, route.Id.Name, route.Id.Version, results, timings);
    }

    private PredictorSettings Validate(PredictorSettings settings)
    {
        var problems = new List<string>();
        var batch = settings.BatchSize == 0 ? 1 : settings.BatchSize;
        if (batch < 1 || batch > _options.MaxBatchSize)
        {
            problems.Add($"batch_size must be from 1 to {_options.MaxBatchSize}, got {settings.BatchSize}");
        }

        var trace = string.IsNullOrEmpty(settings.TraceLevel) ? PredictorTraceLevels.None : settings.TraceLevel.ToLowerInvariant();
        if (!PredictorTraceLevels.All.Contains(trace))
        {
            problems.Add($"trace_level '{settings.TraceLevel}' is not one of {string.Join(", ", PredictorTraceLevels.All)}");
        }

        var device = string.IsNullOrEmpty(settings.Device) ? PredictorDevices.Any : settings.Device.ToLowerInvariant();
        if (!PredictorDevices.All.Contains(device))
        {
            problems.Add($"device '{settings.Device}' is not one of {string.Join(", ", PredictorDevices.All)}");
        }

        if (settings.FeatureLimit is < 0 or > ManifestValidator.MaxFeatureLimit)
        {
            problems.Add($"feature_limit must be from 0 (the manifest's) to {ManifestValidator.MaxFeatureLimit}, got {settings.FeatureLimit}");
        }

        if (problems.Count > 0)
        {
            throw new ModelException(ModelErrorKind.InvalidArgument, $"Invalid predictor options: {string.Join("; ", problems)}", problems);
        }

        if (device == PredictorDevices.Gpu)
        {
            throw new ModelException(ModelErrorKind.FailedPrecondition,
                "device 'gpu' cannot be served: the model replicas run ONNX Runtime's CPU execution provider; use 'cpu' or 'any'.");
        }

        return settings with { BatchSize = batch, TraceLevel = trace, Device = device };
    }

    private void CheckCount(int count, string what)
    {
        if (count == 0)
        {
            throw ModelException.InvalidArgument($"{what}: send at least one.");
        }

        if (count > _options.MaxInputsPerRequest)
        {
            throw new ModelException(ModelErrorKind.PayloadTooLarge,
                $"{what}: {count} in one request, more than {_options.MaxInputsPerRequest} (Carml:Predictors:MaxInputsPerRequest).");
        }
    }

    private IPredictorGrain Grain(string id) =>
        IsPredictorId(id) ? grains.GetGrain<IPredictorGrain>(id) : throw UnknownPredictor(id);

    private static ModelException UnknownPredictor(string id) =>
        ModelException.NotFound($"Predictor '{id}' is unknown, closed or expired; open a new one.");

    private static RawOutput Slice(InferenceTensor output, int index, int batch)
    {
        if (output.Shape.Length == 0 || output.Shape[0] != batch || output.Data.Length % batch != 0)
        {
            return new RawOutput(output.Name, output.Datatype.ToName(), output.Shape, output.Data);
        }

        var size = output.Data.Length / batch;
        return new RawOutput(output.Name, output.Datatype.ToName(), [.. output.Shape.Skip(1)], output.Data.AsSpan(index * size, size).ToArray());
    }

    private static long Us(long ticks) => ticks * 1_000_000 / Stopwatch.Frequency;

    [LoggerMessage(EventId = 2310, Level = LogLevel.Information, Message = "Predictor {Predictor} opened on {Model} version {Version}")]
    private static partial void LogOpened(ILogger logger, string predictor, string model, string version);
}

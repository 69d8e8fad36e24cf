using System.Diagnostics;
using System.Runtime.InteropServices;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Logging;

namespace Carml.Orleans.Grains;

/// <summary>
/// Runs a model over a labelled CSV dataset, or an image dataset with one folder per label (images pre-processed as
/// the manifest's image input says), as MLModelScope evaluations do: warm-up batches, then the dataset in
/// batches of the requested size, repeated; top-1/top-5 accuracy, latency percentiles and throughput. The request is
/// checked completely before anything runs; the record is written to the run store when it starts and when it ends.
/// </summary>
public sealed partial class EvaluationGrain(IRunStore runs, ILocalSiloDetails silo, TimeProvider time, ILogger<EvaluationGrain> logger)
    : Grain, IEvaluationGrain
{
    private RunRecord? _record;
    private CancellationTokenSource? _cancellation;
    private Task? _running;

    private string Id => this.GetPrimaryKeyString();

    public async Task<RunRecord> StartAsync(EvaluationRequest request)
    {
        if (_record is not null || await runs.GetAsync(Id, CancellationToken.None) is not null)
        {
            throw new ModelException(ModelErrorKind.Conflict, $"Evaluation {Id} already exists.");
        }

        var plan = await PlanAsync(request);
        _record = new RunRecord
        {
            Id = Id,
            Kind = RunKind.Evaluation,
            Model = plan.Model.Name,
            Version = plan.Model.Version,
            Agent = silo.SiloAddress.ToString(),
            ExecutionProvider = plan.ExecutionProvider,
            BatchSize = request.BatchSize,
            Inputs = [new TensorSummary(plan.Input.Name, plan.Input.Datatype.ToName(), plan.Input.Shape, 0)],
            Outputs = [new TensorSummary(plan.Output.Name, plan.Output.Datatype.ToName(), plan.Output.Shape, 0)],
            Status = RunStatus.Running,
            CreatedAt = time.GetUtcNow(),
            Owner = request.Owner,
            Labels = request.Labels,
        };
        await runs.SaveAsync([_record], CancellationToken.None);
        _cancellation = new CancellationTokenSource();
        DelayDeactivation(TimeSpan.FromDays(1)); // an evaluation keeps its grain alive while it runs
        _running = RunAsync(plan, request, _cancellation.Token);
        LogStarted(logger, Id, plan.Model.Key, request.Dataset, plan.Rows.Count);
        return _record;
    }

    public async Task<RunRecord?> GetAsync()
    {
        if (_record is not null)
        {
            return _record;
        }

        var stored = await runs.GetAsync(Id, CancellationToken.None);
        if (stored is { Kind: RunKind.Evaluation, Status: RunStatus.Running })
        {
            // Stored as running but not running here: the silo that ran it stopped.
            stored = stored with { Status = RunStatus.Failed, Error = "The evaluation was interrupted by a restart.", FinishedAt = time.GetUtcNow() };
            await runs.SaveAsync([stored], CancellationToken.None);
        }

        return stored is { Kind: RunKind.Evaluation } ? stored : null;
    }

    public async Task<RunRecord> CancelAsync()
    {
        var record = await GetAsync() ?? throw ModelException.NotFound($"There is no evaluation {Id}.");
        if (record.Status != RunStatus.Running || _cancellation is null)
        {
            throw new ModelException(ModelErrorKind.Conflict, $"Evaluation {Id} has already {record.Status.ToString().ToLowerInvariant()}; only a running evaluation can be cancelled.");
        }

        await _cancellation.CancelAsync();
        await _running!;
        return _record!;
    }

    private const int MaxWarmup = 10_000;
    private const int MaxRepetitions = 10_000;
    private const long MaxTimedBatches = 1_000_000;

    private sealed record Plan(
        ModelId Model, ModelManifest Manifest, string? ExecutionProvider, TensorSpec Input, TensorSpec Output,
        IReadOnlyList<CsvRow> Rows, long[] Labels, IModelReplicaGrain Replica);

    private async Task<Plan> PlanAsync(EvaluationRequest request)
    {
        var versions = await GrainFactory.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync(request.Model);
        var version = VersionSelector.Select(request.Version, versions) ?? throw ModelException.UnknownModel(request.Model, null);
        var id = new ModelId(request.Model, version);
        var status = await GrainFactory.GetGrain<IModelGrain>(id.Key).GetStatusAsync() ?? throw ModelException.UnknownModel(id.Name, id.Version);
        var manifest = status.Manifest;

        if (request.BatchSize < 1 || (manifest.MaxBatchSize > 0 && request.BatchSize > manifest.MaxBatchSize))
        {
            throw ModelException.InvalidArgument(manifest.MaxBatchSize > 0
                ? $"batch_size must be between 1 and the model's max_batch_size {manifest.MaxBatchSize}, got {request.BatchSize}."
                : $"batch_size must be at least 1, got {request.BatchSize}.");
        }

        if (manifest.MaxBatchSize == 0 && request.BatchSize != 1)
        {
            throw ModelException.InvalidArgument($"Model '{id.Name}' does not batch (max_batch_size 0): use batch_size 1.");
        }

        if (request.Warmup is < 0 or > MaxWarmup || request.Repetitions is < 1 or > MaxRepetitions)
        {
            throw ModelException.InvalidArgument($"warmup must be 0 to {MaxWarmup} and repetitions 1 to {MaxRepetitions}.");
        }

        if (manifest.Inputs is not [var input]
            || (input.Image is null && (input.Shape.Count != 2 || input.Datatype is not (TensorDatatype.FP32 or TensorDatatype.FP64))))
        {
            throw ModelException.InvalidArgument($"Model '{id.Name}' does not take one FP32/FP64 [batch, features] input or one image input; evaluations need one.");
        }

        var output = request.Output is { } name
            ? manifest.Outputs.FirstOrDefault(o => o.Name == name) ?? throw ModelException.InvalidArgument($"Model '{id.Name}' has no output '{name}'.")
            : manifest.Outputs.FirstOrDefault(o => o.Shape.Count == 2 && o.Datatype is TensorDatatype.FP32 or TensorDatatype.FP64)
                ?? throw ModelException.InvalidArgument($"Model '{id.Name}' has no FP32/FP64 [batch, classes] output to score; name one with output.");

        var dataset = await GrainFactory.GetGrain<IDatasetGrain>(request.Dataset).GetAsync()
            ?? throw ModelException.NotFound($"Dataset '{request.Dataset}' is not registered.");
        // An image input reads an archive with one folder per label; anything else reads a CSV.
        var rows = input.Image is not null
            ? ImageDatasetRows.Load(dataset, input, new Preprocessing.ImageLimits())
            : CsvDataset.Load(CsvFile(dataset), request.LabelColumn);
        if (input.Image is null && input.Shape[1] >= 0 && rows[0].Features.Length != input.Shape[1])
        {
            throw ModelException.InvalidArgument($"The dataset has {rows[0].Features.Length} feature columns; input '{input.Name}' takes {input.Shape[1]}.");
        }

        // Each timed batch keeps its timing: the total is bounded so one request cannot grow the grain without limit.
        var timed = ((rows.Count + request.BatchSize - 1L) / request.BatchSize) * request.Repetitions;
        if (timed > MaxTimedBatches)
        {
            throw ModelException.InvalidArgument(
                $"{rows.Count} rows in batches of {request.BatchSize} × {request.Repetitions} repetitions is {timed} timed batches; at most {MaxTimedBatches}: use fewer repetitions or a larger batch_size.");
        }

        var labels = rows.Select(r => LabelIndex(r, manifest)).ToArray();
        return new Plan(id, manifest, status.ExecutionProvider, input, output, rows, labels, GrainFactory.GetGrain<IModelReplicaGrain>(id.ReplicaKey(0)));
    }

    private static string CsvFile(DatasetInfo dataset)
    {
        if (File.Exists(dataset.Location))
        {
            return dataset.Location;
        }

        var csv = dataset.Files.Where(f => f.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)).ToList();
        return csv.Count == 1
            ? Path.Combine(dataset.Location, csv[0])
            : throw ModelException.InvalidArgument($"Dataset '{dataset.Name}' holds {csv.Count} CSV files; CSV evaluations need exactly one.");
    }

    private static long LabelIndex(CsvRow row, ModelManifest manifest)
    {
        for (var i = 0; i < manifest.Labels.Count; i++)
        {
            if (manifest.Labels[i] == row.Label)
            {
                return i;
            }
        }

        return long.TryParse(row.Label, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index)
            ? index
            : throw ModelException.InvalidArgument($"line {row.Line}: label '{row.Label}' is neither a class index nor one of the model's labels ({string.Join(", ", manifest.Labels)}).");
    }

    private async Task RunAsync(Plan plan, EvaluationRequest request, CancellationToken cancellationToken)
    {
        var batches = plan.Rows.Chunk(request.BatchSize).Select((rows, i) => (Rows: rows, First: i * request.BatchSize)).ToList();
        var total = request.Warmup + (batches.Count * request.Repetitions);
        var done = 0;
        var timings = new List<BatchTiming>();
        long correct = 0, correctTop5 = 0;
        var started = Stopwatch.GetTimestamp();
        try
        {
            for (var w = 0; w < request.Warmup; w++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await InferAsync(plan, batches[w % batches.Count].Rows);
                Progress(++done, total);
            }

            started = Stopwatch.GetTimestamp();
            for (var repetition = 0; repetition < request.Repetitions; repetition++)
            {
                foreach (var (rows, first) in batches)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var batchStart = Stopwatch.GetTimestamp();
                    var scores = await InferAsync(plan, rows);
                    timings.Add(new BatchTiming(rows.Length, Stopwatch.GetElapsedTime(batchStart).TotalMilliseconds));
                    if (repetition == 0)
                    {
                        var classes = scores.Length / rows.Length;
                        for (var r = 0; r < rows.Length; r++)
                        {
                            var rank = Rank(scores.AsSpan(r * classes, classes), plan.Labels[first + r]);
                            correct += rank == 0 ? 1 : 0;
                            correctTop5 += rank < 5 ? 1 : 0;
                        }
                    }

                    Progress(++done, total);
                }
            }

            var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
            await FinishAsync(RunStatus.Succeeded, null, Result(plan, request, timings, correct, correctTop5, elapsed));
        }
        catch (OperationCanceledException)
        {
            await FinishAsync(RunStatus.Cancelled, "Cancelled by the user.", Result(plan, request, timings, correct, correctTop5, Stopwatch.GetElapsedTime(started).TotalSeconds));
        }
        catch (Exception e)
        {
            LogFailed(logger, Id, e);
            await FinishAsync(RunStatus.Failed, e.Message, null);
        }
    }

    private async Task<double[]> InferAsync(Plan plan, CsvRow[] rows)
    {
        var features = rows[0].Features.Length;
        byte[] data;
        if (plan.Input.Datatype == TensorDatatype.FP32)
        {
            var values = new float[rows.Length * features];
            for (var r = 0; r < rows.Length; r++)
            {
                rows[r].Features.CopyTo(values, r * features);
            }

            data = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        }
        else
        {
            data = MemoryMarshal.AsBytes(rows.SelectMany(r => r.Features).Select(f => (double)f).ToArray().AsSpan()).ToArray();
        }

        long[] shape = plan.Input.Image is null ? [rows.Length, features] : new Preprocessing.ImageTensorWriter(plan.Input).Shape(rows.Length);
        var response = await plan.Replica.InferAsync(new InferenceRequest(
            [new InferenceTensor(plan.Input.Name, plan.Input.Datatype, shape, data)], [plan.Output.Name]));
        var output = response.Outputs[0];
        return output.Datatype == TensorDatatype.FP32
            ? MemoryMarshal.Cast<byte, float>(output.Data).ToArray().Select(v => (double)v).ToArray()
            : MemoryMarshal.Cast<byte, double>(output.Data).ToArray();
    }

    /// <summary>How many classes score higher than the true one (0 = top-1 correct).</summary>
    private static int Rank(ReadOnlySpan<double> scores, long label)
    {
        if (label < 0 || label >= scores.Length)
        {
            return int.MaxValue;
        }

        var truth = scores[(int)label];
        var higher = 0;
        foreach (var score in scores)
        {
            higher += score > truth ? 1 : 0;
        }

        return higher;
    }

    private static EvaluationResult Result(Plan plan, EvaluationRequest request, List<BatchTiming> timings, long correct, long correctTop5, double seconds)
    {
        var latencies = timings.Select(t => t.Milliseconds).Order().ToArray();
        double Percentile(double q) => latencies.Length == 0 ? 0 : latencies[Math.Min(latencies.Length - 1, (int)Math.Ceiling(q * latencies.Length) - 1)];
        var samples = (long)plan.Rows.Count;
        return new EvaluationResult
        {
            Dataset = request.Dataset,
            BatchSize = request.BatchSize,
            Warmup = request.Warmup,
            Repetitions = request.Repetitions,
            Samples = samples,
            Correct = correct,
            CorrectTop5 = correctTop5,
            Top1Accuracy = samples == 0 ? 0 : (double)correct / samples,
            Top5Accuracy = samples == 0 ? 0 : (double)correctTop5 / samples,
            LatencyP50Ms = Percentile(0.50),
            LatencyP90Ms = Percentile(0.90),
            LatencyP95Ms = Percentile(0.95),
            LatencyP99Ms = Percentile(0.99),
            LatencyMeanMs = latencies.Length == 0 ? 0 : latencies.Average(),
            ThroughputSamplesPerSecond = seconds > 0 ? timings.Sum(t => t.Rows) / seconds : 0,
            Batches = timings,
        };
    }

    private void Progress(int done, int total) => _record = _record! with { Progress = (double)done / total };

    private async Task FinishAsync(RunStatus status, string? error, EvaluationResult? result)
    {
        var now = time.GetUtcNow();
        _record = _record! with
        {
            Status = status,
            Error = error,
            Evaluation = result,
            FinishedAt = now,
            Progress = status == RunStatus.Succeeded ? 1 : _record.Progress,
            Timings = new StageTimings(0, 0, (long)((result?.Batches.Sum(b => b.Milliseconds) ?? 0) * 1000), 0, (long)(now - _record.CreatedAt).TotalMicroseconds),
        };
        await runs.SaveAsync([_record], CancellationToken.None);
        LogFinished(logger, Id, status, result?.Top1Accuracy);
    }

    [LoggerMessage(EventId = 1301, Level = LogLevel.Information, Message = "Evaluation {Evaluation} of {Model} on {Dataset} started ({Rows} rows)")]
    private static partial void LogStarted(ILogger logger, string evaluation, string model, string dataset, int rows);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Information, Message = "Evaluation {Evaluation} {Status} (top-1 {Accuracy})")]
    private static partial void LogFinished(ILogger logger, string evaluation, RunStatus status, double? accuracy);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Error, Message = "Evaluation {Evaluation} failed")]
    private static partial void LogFailed(ILogger logger, string evaluation, Exception exception);
}

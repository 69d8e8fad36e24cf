using Carml.Orleans.Core;
using Carml.Orleans.Gateway.Security;
using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Carml.Orleans.Gateway.Management;

/// <summary>How a client starts an evaluation.</summary>
public sealed record EvaluationRequestDto(
    string? Model, string? Version, string? Dataset, int BatchSize = 1, int Warmup = 0, int Repetitions = 1,
    string? LabelColumn = null, string? Output = null, Dictionary<string, string>? Labels = null);

/// <summary>Two or more evaluations side by side.</summary>
public sealed record EvaluationComparisonRow(
    string Id, string Model, string Version, string Status, string? Dataset, int BatchSize, double? Top1Accuracy, double? Top5Accuracy,
    double? LatencyP50Ms, double? LatencyP99Ms, double? ThroughputSamplesPerSecond, string? ExecutionProvider, string? Agent);

/// <summary>Runs (predictions and evaluations) searched from the run store, and evaluations started, watched and cancelled.</summary>
public static class RunApi
{
    public static IEndpointRouteBuilder MapRuns(this IEndpointRouteBuilder endpoints)
    {
        var runs = endpoints.MapGroup("/api/runs").WithTags("Runs").RequireRunAccess();
        runs.MapGet("/", SearchAsync).WithSummary("Search runs: model, version, agent, status, kind, from, to, label=key:value; newest first, page_size and page_token.");
        runs.MapGet("/{id}", GetRunAsync).WithSummary("One run.");

        var evaluations = endpoints.MapGroup("/api/evaluations").WithTags("Evaluations").RequireEvaluationAccess();
        evaluations.MapPost("/", StartAsync).WithSummary("Evaluate a model on a registered CSV dataset; answers at once with the running record.");
        evaluations.MapGet("/compare", CompareAsync).WithSummary("Evaluations side by side: ids=a,b,…");
        evaluations.MapGet("/{id}", GetEvaluationAsync).WithSummary("An evaluation with its progress, and its result once finished.");
        evaluations.MapPost("/{id}/cancel", CancelAsync).WithSummary("Cancel a running evaluation.");
        return endpoints;
    }

    private static async Task<Ok<RunPageDto>> SearchAsync(
        IRunStore store,
        HttpContext context,
        string? model, string? version, string? agent, string? status, string? kind, DateTimeOffset? from, DateTimeOffset? to, string? label,
        [FromQuery(Name = "page_size")] int? pageSize,
        [FromQuery(Name = "page_token")] string? pageToken,
        CancellationToken cancellationToken)
    {
        var query = new RunQuery
        {
            Model = model,
            Version = version,
            Agent = agent,
            Status = ParseEnum<RunStatus>(status, "status"),
            Kind = ParseEnum<RunKind>(kind, "kind"),
            From = from,
            To = to,
            Label = ParseLabel(label),
            PageSize = pageSize ?? 50,
            PageToken = pageToken,
            Owner = AccessFilters.RunOwnerFilter(context),
        };
        var page = await store.SearchAsync(query, cancellationToken);
        return TypedResults.Ok(new RunPageDto(page.Runs, page.NextPageToken));
    }

    private static async Task<Ok<RunRecord>> GetRunAsync(string id, IRunStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok((RunIds.IsValid(id) ? await store.GetAsync(id, cancellationToken) : null) ?? throw ModelException.NotFound($"There is no run {id}."));

    private static async Task<Accepted<RunRecord>> StartAsync(EvaluationRequestDto? request, IGrainFactory grains, TimeProvider time)
    {
        if (request?.Model is not { Length: > 0 } model || request.Dataset is not { Length: > 0 } dataset)
        {
            throw ModelException.InvalidArgument("model and dataset are required.");
        }

        var id = RunIds.New(time.GetUtcNow());
        var record = await grains.GetGrain<IEvaluationGrain>(id).StartAsync(new EvaluationRequest
        {
            Model = model,
            Version = request.Version,
            Dataset = dataset,
            BatchSize = request.BatchSize,
            Warmup = request.Warmup,
            Repetitions = request.Repetitions,
            LabelColumn = request.LabelColumn,
            Output = request.Output,
            Labels = request.Labels ?? [],
            Owner = RequestPrincipal.Owner,
        });
        return TypedResults.Accepted($"/api/evaluations/{id}", record);
    }

    private static async Task<Ok<RunRecord>> GetEvaluationAsync(string id, IGrainFactory grains) =>
        TypedResults.Ok(await FindAsync(id, grains));

    private static async Task<Ok<RunRecord>> CancelAsync(string id, IGrainFactory grains)
    {
        await FindAsync(id, grains);
        return TypedResults.Ok(await grains.GetGrain<IEvaluationGrain>(id).CancelAsync());
    }

    private static async Task<Ok<IReadOnlyList<EvaluationComparisonRow>>> CompareAsync(string? ids, IGrainFactory grains)
    {
        var list = (ids ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (list.Length < 2)
        {
            throw ModelException.InvalidArgument("Give two or more evaluation ids: ids=a,b.");
        }

        var rows = new List<EvaluationComparisonRow>();
        foreach (var id in list)
        {
            var run = await FindAsync(id, grains);
            var e = run.Evaluation;
            rows.Add(new EvaluationComparisonRow(run.Id, run.Model, run.Version, run.Status.ToString().ToLowerInvariant(), e?.Dataset, run.BatchSize,
                e?.Top1Accuracy, e?.Top5Accuracy, e?.LatencyP50Ms, e?.LatencyP99Ms, e?.ThroughputSamplesPerSecond, run.ExecutionProvider, run.Agent));
        }

        return TypedResults.Ok<IReadOnlyList<EvaluationComparisonRow>>(rows);
    }

    private static async Task<RunRecord> FindAsync(string id, IGrainFactory grains) =>
        (RunIds.IsValid(id) ? await grains.GetGrain<IEvaluationGrain>(id).GetAsync() : null)
            ?? throw ModelException.NotFound($"There is no evaluation {id}.");

    /// <summary>One value by its name only (a number, a comma list or a repeated parameter is a mistake, not a search).</summary>
    private static T? ParseEnum<T>(string? value, string name) where T : struct, Enum =>
        value is null ? null
        : EnumNames.TryParse<T>(value, out var parsed) ? parsed
        : throw ModelException.InvalidArgument($"{name} '{value}' is not one of {EnumNames.List<T>()}.");

    private static KeyValuePair<string, string>? ParseLabel(string? label)
    {
        if (label is null)
        {
            return null;
        }

        var colon = label.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 ? new(label[..colon], label[(colon + 1)..]) : throw ModelException.InvalidArgument($"label '{label}' must be key:value.");
    }
}

public sealed record RunPageDto(IReadOnlyList<RunRecord> Runs, string? NextPageToken);

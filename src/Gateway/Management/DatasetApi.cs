using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Transfers;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Management;

/// <summary>How a client registers a dataset: a name and where its data comes from.</summary>
public sealed record DatasetRegistrationDto(string? Name, string? Description, DatasetSourceDto? Source, bool Unarchive = true);

/// <summary>One of upload (a completed tus upload id), url (with an optional checksum) or sha256 (a stored artifact).</summary>
public sealed record DatasetSourceDto(string? Upload, string? Url, string? Checksum, string? Sha256);

public sealed record DatasetDto(
    string Name, string? Description, string Sha256, long SizeBytes, int FileCount, IReadOnlyList<string> Files, DateTimeOffset RegisteredAt, string? Origin)
{
    public const int ListedFiles = 1000;

    public static DatasetDto From(DatasetInfo d) =>
        new(d.Name, d.Description, d.Sha256, d.SizeBytes, d.Files.Count, d.Files.Take(ListedFiles).ToArray(), d.RegisteredAt, d.Origin);
}

/// <summary>
/// Datasets for evaluations, registered from a tus upload, a URL or a stored artifact, the same way models are.
/// Archives are unpacked (safely, with the archive limits) into a content-addressed directory.
/// </summary>
public static class DatasetApi
{
    public static IEndpointRouteBuilder MapDatasets(this IEndpointRouteBuilder endpoints)
    {
        var datasets = endpoints.MapGroup("/api/datasets").WithTags("Datasets");
        datasets.MapPost("/", RegisterAsync).WithSummary("Register a dataset from an upload, a URL or a stored artifact; archives are unpacked.");
        datasets.MapGet("/", ListAsync).WithSummary("Registered dataset names.");
        datasets.MapGet("/{name}", GetAsync).WithSummary("One dataset.");
        datasets.MapDelete("/{name}", DeleteAsync).WithSummary("Forget a dataset.");
        return endpoints;
    }

    private static async Task<Created<DatasetDto>> RegisterAsync(
        DatasetRegistrationDto? registration,
        ModelSourceResolver sources,
        ContentStore store,
        IGrainFactory grains,
        IOptions<ArchiveLimits> limits,
        TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (registration?.Name is not { } name || !ManifestValidator.IsValidIdentifier(name))
        {
            throw ModelException.InvalidArgument("name is required: letters, digits, '_', '.', '-', starting with a letter or digit.");
        }

        var origin = registration.Source;
        var given = new[] { origin?.Upload, origin?.Url, origin?.Sha256 }.Count(s => !string.IsNullOrEmpty(s));
        if (given != 1)
        {
            throw ModelException.InvalidArgument("source needs exactly one of upload, url or sha256.");
        }

        var resolution = new ModelSourceResolver.Resolution();
        try
        {
            var source = new ModelSource { Upload = origin!.Upload, Url = origin.Url, Checksum = origin.Checksum, Sha256 = origin.Sha256 };
            var (sha, nameHint) = await sources.FetchAsync(source, null, resolution, cancellationToken);
            var file = store.GetPath(sha);
            var location = file;
            IReadOnlyList<string> files = [];
            if (registration.Unarchive && ArchiveExtractor.Detect(file) != ArchiveKind.None)
            {
                location = Path.Combine(Path.GetDirectoryName(store.Root.TrimEnd(Path.DirectorySeparatorChar))!, "datasets", sha);
                if (!Directory.Exists(location))
                {
                    UnpackOnce(file, location, limits.Value, nameHint);
                }

                files = Directory.EnumerateFiles(location, "*", SearchOption.AllDirectories)
                    .Select(f => Path.GetRelativePath(location, f).Replace('\\', '/')).Order(StringComparer.Ordinal).ToArray();
            }

            var dataset = await grains.GetGrain<IDatasetGrain>(name).RegisterAsync(new DatasetInfo
            {
                Name = name,
                Description = registration.Description,
                Sha256 = sha,
                SizeBytes = store.SizeOf(sha),
                Files = files,
                Location = location,
                RegisteredAt = time.GetUtcNow(),
                Origin = origin.Url is { } url ? new Uri(url).GetLeftPart(UriPartial.Path) : origin.Upload is { } upload ? $"upload:{upload}" : $"sha256:{sha}",
            });
            resolution.Added.Clear();
            return TypedResults.Created($"/api/datasets/{name}", DatasetDto.From(dataset));
        }
        finally
        {
            resolution.Discard(store);
        }
    }

    /// <summary>
    /// Unpacks into a private folder and renames it into place, so the content-addressed folder is either complete or
    /// absent, even if the process dies mid-way or two registrations of one archive race.
    /// </summary>
    private static void UnpackOnce(string archive, string location, ArchiveLimits limits, string? nameHint)
    {
        var staging = $"{location}.unpacking-{Guid.NewGuid():N}";
        try
        {
            ArchiveExtractor.Extract(archive, staging, limits, nameHint);
            Directory.Move(staging, location);
        }
        catch (ArchiveException e)
        {
            throw ModelException.InvalidArgument($"The dataset archive cannot be used: {e.Message}");
        }
        catch (IOException) when (Directory.Exists(location))
        {
            // Another registration of the same archive finished first; its folder holds the same files.
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }

    private static async Task<Ok<IReadOnlyList<string>>> ListAsync(IGrainFactory grains) =>
        TypedResults.Ok(await grains.GetGrain<IDatasetCatalogGrain>(IDatasetCatalogGrain.DefaultKey).ListAsync());

    private static async Task<Ok<DatasetDto>> GetAsync(string name, IGrainFactory grains) =>
        TypedResults.Ok(DatasetDto.From(await grains.GetGrain<IDatasetGrain>(name).GetAsync()
            ?? throw ModelException.NotFound($"Dataset '{name}' is not registered.")));

    private static async Task<NoContent> DeleteAsync(string name, IGrainFactory grains) =>
        await grains.GetGrain<IDatasetGrain>(name).DeleteAsync()
            ? TypedResults.NoContent()
            : throw ModelException.NotFound($"Dataset '{name}' is not registered.");
}

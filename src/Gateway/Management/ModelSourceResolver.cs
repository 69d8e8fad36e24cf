using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Transfers;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Management;

/// <summary>
/// Turns a manifest's source (a file sent with the request, a stored artifact, a tus upload, or a URL) into the model
/// file in the content store. Archives are unpacked safely and the model picked from inside them. Every file this
/// resolution adds to the store is listed, so a refused registration can remove them again.
/// </summary>
public sealed class ModelSourceResolver(
    ContentStore store, DownloadManager downloads, UploadFileStore uploads, IGrainFactory grains, IOptions<ArchiveLimits> archiveLimits)
{
    public sealed class Resolution
    {
        public List<string> Added { get; } = [];

        public ModelArtifact? Artifact { get; set; }

        public void Discard(ContentStore store)
        {
            foreach (var sha in Added)
            {
                store.Delete(sha);
            }
        }
    }

    public async Task ResolveAsync(ModelManifest manifest, StoredContent? sent, Resolution resolution, CancellationToken cancellationToken)
    {
        var (sha, nameHint) = await FetchAsync(manifest.Source, sent, resolution, cancellationToken);
        resolution.Artifact = await UnpackIfArchiveAsync(sha, manifest.Source.ArchivePath, nameHint, resolution, cancellationToken);
    }

    /// <summary>
    /// Brings the source's file into the content store: the file sent with the request, a completed upload, a
    /// download, or a stored artifact. Returns its SHA-256 and a file name hint (for single compressed files).
    /// </summary>
    public async Task<(string Sha256, string? NameHint)> FetchAsync(ModelSource source, StoredContent? sent, Resolution resolution, CancellationToken cancellationToken)
    {
        string sha;
        string? nameHint = source.Path;
        if (sent is not null)
        {
            if (source.Upload is not null || source.Url is not null)
            {
                throw ModelException.InvalidArgument("The model file was sent with the request; do not also give source.upload or source.url.");
            }

            if (source.Sha256 is { } declared && declared != sent.Sha256)
            {
                throw ModelException.InvalidArgument($"source.sha256 is {declared} but the uploaded model file's SHA-256 is {sent.Sha256}.");
            }

            sha = sent.Sha256;
        }
        else if (source.Upload is { } uploadId)
        {
            var upload = UploadFileStore.IsUploadId(uploadId) ? await grains.GetGrain<IUploadGrain>(uploadId).GetAsync() : null;
            if (upload is null || upload.State is UploadState.Terminated || !Security.AccessFilters.MayUse(upload))
            {
                throw ModelException.InvalidArgument($"source.upload {uploadId} is not an upload this server knows.");
            }

            if (upload.State != UploadState.Completed || upload.Sha256 is null)
            {
                throw ModelException.InvalidArgument(
                    $"source.upload {uploadId} is {upload.State.ToString().ToLowerInvariant()} with {upload.Offset} of {upload.Length?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} bytes; finish the upload first.");
            }

            sha = upload.Sha256;
            if (!store.Exists(sha))
            {
                await ImportFinishedUploadAsync(uploadId, sha, cancellationToken);
            }

            nameHint ??= upload.Metadata.GetValueOrDefault("filename");
        }
        else if (source.Url is { } url)
        {
            StoredContent stored;
            try
            {
                stored = await downloads.FetchIntoStoreAsync(store, url, source.Checksum, cancellationToken);
            }
            catch (DownloadException e)
            {
                throw new ModelException(
                    e.Kind == DownloadErrorKind.TooLarge ? ModelErrorKind.PayloadTooLarge : ModelErrorKind.InvalidArgument,
                    $"source.url: {e.Message}");
            }

            if (stored.Created)
            {
                resolution.Added.Add(stored.Sha256);
            }

            sha = stored.Sha256;
            nameHint ??= Path.GetFileName(new Uri(url).AbsolutePath);
        }
        else if (source.Sha256 is { } stored)
        {
            if (!store.Exists(stored))
            {
                throw ModelException.InvalidArgument(
                    $"source.sha256 {stored} is not in the artifact store; upload it with POST /api/artifacts or send the file with the manifest.");
            }

            sha = stored;
        }
        else
        {
            throw ModelException.InvalidArgument(source.Path is null
                ? "No model file: send it as the multipart part 'model', or give source.sha256, source.upload or source.url."
                : $"source.path '{source.Path}' is on your machine, not the server's: send the file as the multipart part 'model', upload it (tus, then source.upload) or give source.url.");
        }

        return (sha, nameHint);
    }

    /// <summary>
    /// A finished upload whose SHA-256 is recorded but whose file is still in the upload directory (the gateway failed
    /// between recording and importing it): import it now, hashing it again since this request did not write it.
    /// </summary>
    private async Task ImportFinishedUploadAsync(string uploadId, string sha256, CancellationToken cancellationToken)
    {
        var part = uploads.PathOf(uploadId);
        StoredContent? imported = null;
        try
        {
            imported = await store.ImportAsync(part, computedSha256: null, cancellationToken);
        }
        catch (IOException e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // Imported meanwhile by the request that finished it, or lost.
        }

        if (!store.Exists(sha256))
        {
            if (imported is { Created: true })
            {
                store.Delete(imported.Sha256);
            }

            throw ModelException.InvalidArgument(imported is null
                ? $"source.upload {uploadId} finished but its bytes are no longer stored; upload the file again."
                : $"source.upload {uploadId} recorded SHA-256 {sha256} but its file now has {imported.Sha256}; upload the file again.");
        }
    }

    private async Task<ModelArtifact> UnpackIfArchiveAsync(string sha, string? archivePath, string? nameHint, Resolution resolution, CancellationToken cancellationToken)
    {
        var path = store.GetPath(sha);
        var kind = ArchiveExtractor.Detect(path);
        if (kind == ArchiveKind.None)
        {
            if (archivePath is not null)
            {
                throw ModelException.InvalidArgument($"source.archive_path '{archivePath}' is given but the model file is not an archive.");
            }

            return new ModelArtifact(sha, store.SizeOf(sha));
        }

        var target = Path.Combine(Path.GetTempPath(), "carml-unpack-" + Guid.NewGuid().ToString("N"));
        try
        {
            ExtractedArchive extracted;
            try
            {
                extracted = ArchiveExtractor.Extract(path, target, archiveLimits.Value, nameHint);
            }
            catch (ArchiveException e)
            {
                throw ModelException.InvalidArgument($"The model archive cannot be used: {e.Message}");
            }

            var chosen = archivePath?.Replace('\\', '/').TrimStart('/');
            if (chosen is null)
            {
                var models = extracted.Files.Where(f => f.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)).ToList();
                chosen = models.Count == 1
                    ? models[0]
                    : throw ModelException.InvalidArgument(models.Count == 0
                        ? $"The {kind} archive holds no .onnx file; name the model with source.archive_path (it holds {Describe(extracted.Files)})."
                        : $"The {kind} archive holds {models.Count} .onnx files; choose one with source.archive_path ({Describe(models)}).");
            }
            else if (!extracted.Files.Contains(chosen))
            {
                throw ModelException.InvalidArgument($"source.archive_path '{chosen}' is not in the archive (it holds {Describe(extracted.Files)}).");
            }

            await using var model = File.OpenRead(Path.Combine(target, chosen));
            var stored = await store.PutAsync(model, long.MaxValue, cancellationToken);
            if (stored.Created)
            {
                resolution.Added.Add(stored.Sha256);
            }

            return new ModelArtifact(stored.Sha256, stored.SizeBytes);
        }
        finally
        {
            if (Directory.Exists(target))
            {
                Directory.Delete(target, recursive: true);
            }
        }
    }

    private static string Describe(IReadOnlyList<string> files) =>
        files.Count == 0 ? "no files" : string.Join(", ", files.Take(10).Select(f => $"'{f}'")) + (files.Count > 10 ? ", …" : string.Empty);
}

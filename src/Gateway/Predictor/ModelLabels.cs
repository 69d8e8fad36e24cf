using System.Collections.Concurrent;
using Carml.Orleans.Core;
using Carml.Orleans.Gateway.Management;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Transfers;

namespace Carml.Orleans.Gateway.Predictor;

/// <summary>
/// The labels of a classification output: from its label file (<c>features_url</c>, fetched through the download
/// manager, or <c>features_sha256</c>, a stored artifact; one label a line) or the manifest's <c>labels</c>. Label files
/// are read once per model version and kept until a predictor of that version is reset.
/// </summary>
public sealed class ModelLabels(DownloadManager downloads, ContentStore store)
{
    public const int MaxLabelFileBytes = 16 * 1024 * 1024;

    private readonly ConcurrentDictionary<(ModelId Model, string Output), Lazy<Task<IReadOnlyList<string>>>> _files = new();

    public Task<IReadOnlyList<string>> GetAsync(ModelManifest manifest, TensorSpec output, CancellationToken cancellationToken)
    {
        if (output.Classification is not { } classification || (classification.FeaturesUrl is null && classification.FeaturesSha256 is null))
        {
            return Task.FromResult(manifest.Labels);
        }

        var key = (manifest.Id, output.Name);
        var lazy = _files.GetOrAdd(key, _ => new Lazy<Task<IReadOnlyList<string>>>(() => ReadAsync(classification, CancellationToken.None)));
        return WaitAsync(key, lazy, cancellationToken);
    }

    public void Forget(ModelId model)
    {
        foreach (var key in _files.Keys.Where(k => k.Model == model))
        {
            _files.TryRemove(key, out _);
        }
    }

    private async Task<IReadOnlyList<string>> WaitAsync((ModelId, string) key, Lazy<Task<IReadOnlyList<string>>> lazy, CancellationToken cancellationToken)
    {
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _files.TryRemove(new KeyValuePair<(ModelId, string), Lazy<Task<IReadOnlyList<string>>>>(key, lazy));
            throw;
        }
    }

    private async Task<IReadOnlyList<string>> ReadAsync(ClassificationPostprocessing classification, CancellationToken cancellationToken)
    {
        string path;
        if (classification.FeaturesSha256 is { } sha)
        {
            try
            {
                path = store.GetPath(sha);
            }
            catch (FileNotFoundException)
            {
                throw new ModelException(ModelErrorKind.FailedPrecondition, $"The label file features_sha256 {sha} is not in the content store.");
            }
        }
        else
        {
            try
            {
                path = store.GetPath((await downloads.FetchIntoStoreAsync(store, classification.FeaturesUrl!, checksum: null, cancellationToken)).Sha256);
            }
            catch (DownloadException e)
            {
                throw new ModelException(ModelErrorKind.FailedPrecondition, $"The label file {classification.FeaturesUrl} cannot be read: {e.Message}");
            }
        }

        if (new FileInfo(path).Length > MaxLabelFileBytes)
        {
            throw new ModelException(ModelErrorKind.FailedPrecondition, $"The label file is larger than {MaxLabelFileBytes} bytes.");
        }

        var lines = await File.ReadAllLinesAsync(path, cancellationToken);
        var count = lines.Length;
        while (count > 0 && string.IsNullOrWhiteSpace(lines[count - 1]))
        {
            count--;
        }

        return lines.Take(count).Select(l => l.Trim()).ToArray();
    }
}

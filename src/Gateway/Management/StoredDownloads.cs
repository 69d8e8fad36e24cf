using Carml.Orleans.Core;
using Carml.Orleans.Transfers;

namespace Carml.Orleans.Gateway.Management;

/// <summary>
/// Downloads that end in the content store: the file moves in (its SHA-256 was computed by the download manager while it
/// was written) and the download cache keeps only the URL's record, reusing the stored blob while it lasts. Every URL
/// the gateway fetches for keeps (model sources, label files) goes this one way, so one URL used for both can never
/// find its cached file taken by the other.
/// </summary>
public static class StoredDownloads
{
    public static Task<StoredContent> FetchIntoStoreAsync(
        this DownloadManager downloads, ContentStore store, string url, string? checksum, CancellationToken cancellationToken) =>
        downloads.FetchAndTakeAsync(
            url,
            checksum,
            held => Held(store, held),
            (file, ct) => store.ImportAsync(file.Path, file.Sha256, ct),
            cancellationToken);

    /// <summary>The stored blob, or null (fetch again) when it is gone — even if it goes between looking and measuring.</summary>
    private static StoredContent? Held(ContentStore store, string sha256)
    {
        try
        {
            return store.Exists(sha256) ? new StoredContent(sha256, store.SizeOf(sha256), Created: false) : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }
}

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
            held => store.Exists(held) ? new StoredContent(held, store.SizeOf(held), Created: false) : null,
            (file, ct) => store.ImportAsync(file.Path, file.Sha256, ct),
            cancellationToken);
}

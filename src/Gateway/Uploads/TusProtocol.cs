using System.Globalization;
using System.Text;

namespace Carml.Orleans.Gateway.Uploads;

/// <summary>Header names, values and parsing rules of tus 1.0.0.</summary>
public static class TusProtocol
{
    public const string Version = "1.0.0";
    public const string Extensions = "creation,creation-with-upload,creation-defer-length,termination,expiration,checksum";
    public const string ChecksumAlgorithms = "sha1,sha256";
    public const string OffsetContentType = "application/offset+octet-stream";
    public const int ChecksumMismatch = 460;

    public const string TusResumable = "Tus-Resumable";
    public const string TusVersion = "Tus-Version";
    public const string TusExtension = "Tus-Extension";
    public const string TusMaxSize = "Tus-Max-Size";
    public const string TusChecksumAlgorithm = "Tus-Checksum-Algorithm";
    public const string UploadOffset = "Upload-Offset";
    public const string UploadLength = "Upload-Length";
    public const string UploadDeferLength = "Upload-Defer-Length";
    public const string UploadMetadata = "Upload-Metadata";
    public const string UploadExpires = "Upload-Expires";
    public const string UploadChecksum = "Upload-Checksum";

    public static readonly string CorsAllowHeaders = string.Join(", ",
        "Authorization", "Origin", "X-Requested-With", "X-Request-ID", "X-HTTP-Method-Override", "Content-Type",
        UploadLength, UploadOffset, TusResumable, UploadMetadata, UploadDeferLength, UploadChecksum);

    public static readonly string CorsExposeHeaders = string.Join(", ",
        UploadOffset, "Location", UploadLength, TusVersion, TusResumable, TusMaxSize, TusExtension, UploadMetadata,
        UploadDeferLength, UploadExpires, TusChecksumAlgorithm);

    /// <summary>Metadata kinds the product understands; others are refused so typos surface at once.</summary>
    public static readonly IReadOnlySet<string> Kinds = new HashSet<string>(StringComparer.Ordinal) { "model", "dataset" };

    /// <summary>A non-negative integer header; null when absent; throws <see cref="FormatException"/> when malformed.</summary>
    public static long? ParseLength(string? value, string header)
    {
        if (value is null)
        {
            return null;
        }

        return long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var length)
            ? length
            : throw new FormatException($"{header} '{value}' is not a non-negative integer.");
    }

    /// <summary>
    /// Decodes <c>Upload-Metadata</c>: comma-separated <c>key base64value</c> pairs (value optional), keys unique,
    /// values UTF-8. Throws <see cref="FormatException"/> naming the bad pair.
    /// </summary>
    public static Dictionary<string, string> ParseMetadata(string? header)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(header))
        {
            return metadata;
        }

        var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
        foreach (var pair in header.Split(','))
        {
            var parts = pair.Trim().Split(' ');
            if (parts.Length is < 1 or > 2 || parts[0].Length == 0)
            {
                throw new FormatException($"Upload-Metadata pair '{pair.Trim()}' is not 'key base64value'.");
            }

            string value;
            try
            {
                value = parts.Length == 2 ? strict.GetString(Convert.FromBase64String(parts[1])) : string.Empty;
            }
            catch (Exception e) when (e is FormatException or DecoderFallbackException)
            {
                throw new FormatException($"Upload-Metadata value of '{parts[0]}' is not base64-encoded UTF-8.");
            }

            if (!metadata.TryAdd(parts[0], value))
            {
                throw new FormatException($"Upload-Metadata key '{parts[0]}' appears more than once.");
            }
        }

        if (metadata.TryGetValue("kind", out var kind) && !Kinds.Contains(kind))
        {
            throw new FormatException($"Upload-Metadata kind '{kind}' must be 'model' or 'dataset'.");
        }

        return metadata;
    }

    /// <summary>Parses <c>Upload-Checksum: algorithm base64digest</c>; throws <see cref="FormatException"/>.</summary>
    public static (System.Security.Cryptography.HashAlgorithmName Algorithm, byte[] Digest)? ParseChecksum(string? header)
    {
        if (header is null)
        {
            return null;
        }

        var parts = header.Trim().Split(' ');
        if (parts.Length != 2)
        {
            throw new FormatException($"Upload-Checksum '{header}' is not 'algorithm base64digest'.");
        }

        var algorithm = parts[0].ToLowerInvariant() switch
        {
            "sha1" => System.Security.Cryptography.HashAlgorithmName.SHA1,
            "sha256" => System.Security.Cryptography.HashAlgorithmName.SHA256,
            _ => throw new FormatException($"Upload-Checksum algorithm '{parts[0]}' is not supported (supported: {ChecksumAlgorithms})."),
        };
        try
        {
            return (algorithm, Convert.FromBase64String(parts[1]));
        }
        catch (FormatException)
        {
            throw new FormatException($"Upload-Checksum digest '{parts[1]}' is not base64.");
        }
    }

    public static string FormatExpires(DateTimeOffset expires) => expires.UtcDateTime.ToString("R", CultureInfo.InvariantCulture);
}

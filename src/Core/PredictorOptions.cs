namespace Carml.Orleans.Core;

/// <summary>The predictor API's limits. Section <c>Carml:Predictors</c>; validated on start.</summary>
public sealed class PredictorOptions
{
    public const string Section = "Carml:Predictors";

    /// <summary>Key of the <see cref="TimeProvider"/> that decides predictor expiry (tests replace it with a manual clock).</summary>
    public const string ClockKey = "carml-predictors";

    /// <summary>A predictor without a call for this long expires.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Most inputs (images, URLs or dataset files) in one request.</summary>
    public int MaxInputsPerRequest { get; set; } = 256;

    /// <summary>Largest image accepted, in pixels, checked from the header before decoding.</summary>
    public long MaxImagePixels { get; set; } = 40_000_000;

    /// <summary>Largest image accepted, in bytes (an upload, a URL's body, a dataset file).</summary>
    public long MaxImageBytes { get; set; } = 32L * 1024 * 1024;

    /// <summary>Largest batch size a predictor may ask for.</summary>
    public int MaxBatchSize { get; set; } = 256;

    /// <summary>How images behind URLs are fetched.</summary>
    public ImageFetchOptions Urls { get; set; } = new();

    public IEnumerable<string> Problems()
    {
        if (IdleTimeout <= TimeSpan.Zero)
        {
            yield return $"{Section}:IdleTimeout must be positive.";
        }

        if (MaxInputsPerRequest < 1 || MaxBatchSize < 1)
        {
            yield return $"{Section}:MaxInputsPerRequest and MaxBatchSize must be at least 1.";
        }

        if (MaxImagePixels < 1 || MaxImageBytes < 1)
        {
            yield return $"{Section}:MaxImagePixels and MaxImageBytes must be positive.";
        }

        if (Urls.Timeout <= TimeSpan.Zero || Urls.MaxRedirects < 0 || Urls.MaxConcurrency < 1)
        {
            yield return $"{Section}:Urls: Timeout must be positive, MaxRedirects not negative, MaxConcurrency at least 1.";
        }
    }
}

/// <summary>
/// Per-URL fetch limits. By default only public addresses are fetched: loopback, private (RFC 1918, unique-local),
/// link-local (cloud metadata), carrier-grade NAT and unspecified/multicast addresses are refused.
/// </summary>
public sealed class ImageFetchOptions
{
    /// <summary>Time for one URL, redirects and body included.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    public int MaxRedirects { get; set; } = 5;

    /// <summary>URLs of one request fetched at once.</summary>
    public int MaxConcurrency { get; set; } = 4;

    /// <summary>Allow 127.0.0.0/8 and ::1 (tests, or a gateway that serves images from its own host).</summary>
    public bool AllowLoopback { get; set; }

    /// <summary>Allow private, link-local and other non-public ranges (an internal network you trust).</summary>
    public bool AllowPrivateNetworks { get; set; }
}

namespace Carml.Orleans.Preprocessing;

/// <summary>What an image may be before it is decoded: checked from its header, so a gigantic image costs nothing.</summary>
public sealed record ImageLimits
{
    /// <summary>Default pixel limit: 40 megapixels (a 160 MB RGBA bitmap).</summary>
    public const long DefaultMaxPixels = 40_000_000;

    public long MaxPixels { get; init; } = DefaultMaxPixels;
}

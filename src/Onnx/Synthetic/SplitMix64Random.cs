namespace Carml.Orleans.Onnx.Synthetic;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny generator whose output depends only on the seed, unlike
/// <see cref="Random"/>, whose seeded sequence is not promised to stay the same across .NET versions.
/// </summary>
internal sealed class SplitMix64Random(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        unchecked
        {
            _state += 0x9E3779B97F4A7C15UL;
            var z = _state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    /// <summary>Uniform in [0, 1) with 24 bits of precision, so every value is exactly a float.</summary>
    public float NextSingle() => (NextUInt64() >> 40) * (1f / (1 << 24));

    /// <summary>Uniform in [-limit, limit).</summary>
    public float NextSymmetric(float limit) => ((NextSingle() * 2f) - 1f) * limit;
}

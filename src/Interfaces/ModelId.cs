namespace Carml.Orleans.Interfaces;

/// <summary>A model name and version; the grain key of <see cref="IModelGrain"/> is <c>name/version</c>.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ModelId")]
public readonly record struct ModelId([property: Id(0)] string Name, [property: Id(1)] string Version)
{
    public string Key => $"{Name}/{Version}";

    public string ReplicaKey(int replica) => $"{Name}/{Version}/{replica}";

    public override string ToString() => Key;

    public static ModelId Parse(string key)
    {
        var slash = key.IndexOf('/');
        if (slash <= 0 || slash == key.Length - 1)
        {
            throw new FormatException($"'{key}' is not a model key of the form name/version.");
        }

        var rest = key[(slash + 1)..];
        var second = rest.IndexOf('/');
        return new ModelId(key[..slash], second < 0 ? rest : rest[..second]);
    }
}

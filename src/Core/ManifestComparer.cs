using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>Value equality of manifests, including their tensor lists, labels and attributes.</summary>
public static class ManifestComparer
{
    public static bool Equivalent(ModelManifest a, ModelManifest b) =>
        a.Name == b.Name
        && a.Version == b.Version
        && string.Equals(a.Framework, b.Framework, StringComparison.OrdinalIgnoreCase)
        && a.Description == b.Description
        && a.License == b.License
        && a.MaxBatchSize == b.MaxBatchSize
        && a.Source == b.Source
        && Equivalent(a.Inputs, b.Inputs)
        && Equivalent(a.Outputs, b.Outputs)
        && a.Labels.SequenceEqual(b.Labels)
        && a.Attributes.Count == b.Attributes.Count
        && a.Attributes.All(kv => b.Attributes.TryGetValue(kv.Key, out var value) && value == kv.Value)
        && Equivalent(a.DynamicBatching, b.DynamicBatching)
        && a.Runtime == b.Runtime
        && a.Deployment == b.Deployment;

    private static bool Equivalent(DynamicBatchingSettings? a, DynamicBatchingSettings? b) =>
        a is null || b is null
            ? a is null && b is null
            : (a with { PreferredBatchSizes = [] }) == (b with { PreferredBatchSizes = [] })
                && a.PreferredBatchSizes.SequenceEqual(b.PreferredBatchSizes);

    private static bool Equivalent(IReadOnlyList<TensorSpec> a, IReadOnlyList<TensorSpec> b) =>
        a.Count == b.Count
        && a.Zip(b).All(pair => pair.First.Name == pair.Second.Name
            && pair.First.Datatype == pair.Second.Datatype
            && pair.First.Shape.SequenceEqual(pair.Second.Shape)
            && Equivalent(pair.First.Image, pair.Second.Image)
            && pair.First.Classification == pair.Second.Classification);

    private static bool Equivalent(ImagePreprocessing? a, ImagePreprocessing? b) =>
        a is null || b is null
            ? a is null && b is null
            : a.Mean.SequenceEqual(b.Mean) && a.Std.SequenceEqual(b.Std) && a with { Mean = b.Mean, Std = b.Std } == b;
}

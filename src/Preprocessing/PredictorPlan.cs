using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Preprocessing;

/// <summary>
/// What the predictor API does with a model: the one image input it feeds and the outputs it reads. A model the API
/// cannot feed with images (no <c>type: image</c> input, or other inputs besides it) is a FailedPrecondition.
/// </summary>
public sealed class PredictorPlan
{
    private PredictorPlan(ModelManifest manifest, ImageTensorWriter writer)
    {
        Manifest = manifest;
        Writer = writer;
    }

    public ModelManifest Manifest { get; }

    public ImageTensorWriter Writer { get; }

    /// <summary>The largest batch the model takes in one call (1 when it does not batch).</summary>
    public int MaxBatch => Manifest.MaxBatchSize > 0 ? Manifest.MaxBatchSize : 1;

    public static PredictorPlan For(ModelManifest manifest)
    {
        var images = manifest.Inputs.Where(i => i.Image is not null).ToArray();
        if (images.Length == 0)
        {
            throw new ModelException(ModelErrorKind.FailedPrecondition,
                $"Model '{manifest.Name}' version '{manifest.Version}' has no input of type: image, so it cannot take images; use the KServe v2 tensor API, or register it with image pre-processing.");
        }

        if (manifest.Inputs.Count > 1)
        {
            throw new ModelException(ModelErrorKind.FailedPrecondition,
                $"Model '{manifest.Name}' version '{manifest.Version}' takes {manifest.Inputs.Count} inputs; the predictor API feeds models with one image input only.");
        }

        return new PredictorPlan(manifest, new ImageTensorWriter(images[0]));
    }
}

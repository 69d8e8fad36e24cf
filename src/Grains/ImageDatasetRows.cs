using System.Runtime.InteropServices;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Carml.Orleans.Preprocessing;

namespace Carml.Orleans.Grains;

/// <summary>
/// A labelled image dataset for evaluations: an unpacked archive whose image files sit in one folder per label
/// (<c>cat/1.jpg</c>, <c>dog/7.png</c>, or <c>0/…</c>, <c>180/…</c>). Every image is decoded and pre-processed as the
/// model's image input says, once, before the evaluation runs; every unusable file is reported at once.
/// </summary>
public static class ImageDatasetRows
{
    public const int MaxImages = 10_000;

    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif" };

    /// <summary>One row per image: its pre-processed tensor (FP32) as the features, its folder name as the label.</summary>
    public static IReadOnlyList<CsvRow> Load(DatasetInfo dataset, TensorSpec input, ImageLimits limits)
    {
        if (input.Datatype != TensorDatatype.FP32)
        {
            throw ModelException.InvalidArgument($"Image evaluations need an FP32 image input; '{input.Name}' is {input.Datatype.ToName()}.");
        }

        var files = dataset.Files.Where(f => Extensions.Contains(Path.GetExtension(f))).ToArray();
        if (files.Length == 0)
        {
            throw ModelException.InvalidArgument($"Dataset '{dataset.Name}' has no image files; image evaluations need an archive with one folder per label.");
        }

        if (files.Length > MaxImages)
        {
            throw ModelException.InvalidArgument($"Dataset '{dataset.Name}' has {files.Length} images; image evaluations take at most {MaxImages}.");
        }

        var writer = new ImageTensorWriter(input);
        var rows = new List<CsvRow>(files.Length);
        var problems = new List<string>();
        for (var i = 0; i < files.Length; i++)
        {
            var label = Path.GetFileName(Path.GetDirectoryName(files[i].Replace('/', Path.DirectorySeparatorChar)));
            if (string.IsNullOrEmpty(label))
            {
                problems.Add($"{files[i]}: not in a folder, so it has no label (put images in one folder per label)");
                continue;
            }

            try
            {
                using var bitmap = ImageDecoder.Decode(File.ReadAllBytes(Path.Combine(dataset.Location, files[i])), limits, files[i]);
                var features = new float[writer.ElementsPerImage];
                writer.Write(bitmap, MemoryMarshal.AsBytes(features.AsSpan()));
                rows.Add(new CsvRow(i + 1, features, label));
            }
            catch (ModelException e)
            {
                problems.Add(e.Message);
            }
        }

        return problems.Count == 0
            ? rows
            : throw new ModelException(ModelErrorKind.InvalidArgument, $"Dataset '{dataset.Name}' has unusable images: {string.Join("; ", problems.Take(20))}", problems);
    }
}

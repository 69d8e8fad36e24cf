using System.Globalization;

namespace Carml.Orleans.Onnx.Iris;

/// <summary>
/// Fisher's Iris data read from CSV with the header
/// <c>sepal_length,sepal_width,petal_length,petal_width,species</c> and species <c>setosa</c>, <c>versicolor</c>
/// or <c>virginica</c> (an <c>Iris-</c> prefix, as in the UCI file, is accepted). Blank lines are skipped; any other
/// malformed line is an <see cref="InvalidDataException"/> naming the source and line number.
/// </summary>
public sealed class IrisDataset
{
    public const string Header = "sepal_length,sepal_width,petal_length,petal_width,species";

    private static readonly string[] FeatureColumns = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

    private IrisDataset(IReadOnlyList<IrisSample> samples) => Samples = samples;

    /// <summary>The class names in label order: index 0 is setosa, 1 versicolor, 2 virginica.</summary>
    public static IReadOnlyList<string> SpeciesNames { get; } = ["setosa", "versicolor", "virginica"];

    public static IReadOnlyList<string> FeatureNames => FeatureColumns;

    public IReadOnlyList<IrisSample> Samples { get; }

    public static IrisDataset Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var reader = new StreamReader(path, detectEncodingFromByteOrderMarks: true);
        return Parse(reader, path);
    }

    /// <param name="sourceName">How errors refer to the input, e.g. its file path.</param>
    public static IrisDataset Parse(TextReader reader, string sourceName = "iris.csv")
    {
        ArgumentNullException.ThrowIfNull(reader);
        var samples = new List<IrisSample>();
        var lineNumber = 0;
        var sawHeader = false;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            if (!sawHeader)
            {
                if (!string.Equals(line.Trim().Replace(" ", string.Empty, StringComparison.Ordinal), Header, StringComparison.OrdinalIgnoreCase))
                {
                    throw Malformed(sourceName, lineNumber, $"expected the header '{Header}' but found '{line.Trim()}'");
                }

                sawHeader = true;
                continue;
            }

            samples.Add(ParseRow(line, lineNumber, sourceName));
        }

        if (!sawHeader)
        {
            throw new InvalidDataException($"{sourceName}: the file is empty; expected the header '{Header}' and one row per flower.");
        }

        if (samples.Count == 0)
        {
            throw new InvalidDataException($"{sourceName}: the file has a header but no rows.");
        }

        return new IrisDataset(samples);
    }

    /// <summary>
    /// A deterministic stratified split: within each species, in file order, every <paramref name="testEvery"/>-th
    /// sample (the 5th, 10th, ... for the default) goes to the test set. The full 150-row data gives 120 train / 30 test.
    /// </summary>
    public IrisSplit SplitStratified(int testEvery = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(testEvery, 2);
        var train = new List<IrisSample>();
        var test = new List<IrisSample>();
        var seenPerSpecies = new int[SpeciesNames.Count];
        foreach (var sample in Samples)
        {
            var position = ++seenPerSpecies[sample.SpeciesIndex];
            (position % testEvery == 0 ? test : train).Add(sample);
        }

        return new IrisSplit(train, test);
    }

    private static IrisSample ParseRow(string line, int lineNumber, string sourceName)
    {
        var fields = line.Split(',');
        if (fields.Length != 5)
        {
            throw Malformed(sourceName, lineNumber, $"expected 5 comma-separated fields but found {fields.Length}: '{line}'");
        }

        var values = new float[4];
        for (var i = 0; i < 4; i++)
        {
            var text = fields[i].Trim();
            if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !float.IsFinite(value))
            {
                throw Malformed(sourceName, lineNumber, $"{FeatureColumns[i]} must be a number but is '{text}'");
            }

            if (value < 0)
            {
                throw Malformed(sourceName, lineNumber, $"{FeatureColumns[i]} must not be negative but is {text}");
            }

            values[i] = value;
        }

        var species = fields[4].Trim();
        var name = species.StartsWith("Iris-", StringComparison.OrdinalIgnoreCase) ? species["Iris-".Length..] : species;
        var speciesIndex = -1;
        for (var i = 0; i < SpeciesNames.Count; i++)
        {
            if (string.Equals(name, SpeciesNames[i], StringComparison.OrdinalIgnoreCase))
            {
                speciesIndex = i;
            }
        }

        if (speciesIndex < 0)
        {
            throw Malformed(sourceName, lineNumber, $"species must be one of {string.Join(", ", SpeciesNames)} but is '{species}'");
        }

        return new IrisSample(lineNumber, values[0], values[1], values[2], values[3], speciesIndex);
    }

    private static InvalidDataException Malformed(string sourceName, int lineNumber, string problem) =>
        new($"{sourceName}, line {lineNumber}: {problem}.");
}

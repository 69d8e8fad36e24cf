using System.Globalization;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>One labelled row of a CSV dataset.</summary>
public sealed record CsvRow(int Line, float[] Features, string Label);

/// <summary>
/// A CSV dataset for evaluations: a header row, numeric feature columns and one label column (the last by default).
/// Every malformed row is reported with its line number.
/// </summary>
public static class CsvDataset
{
    public const int MaxReportedProblems = 20;

    public static IReadOnlyList<CsvRow> Load(string path, string? labelColumn)
    {
        using var reader = new StreamReader(path);
        var header = reader.ReadLine();
        if (string.IsNullOrWhiteSpace(header))
        {
            throw ModelException.InvalidArgument("The dataset is empty: it has no header row.");
        }

        var columns = header.Split(',').Select(c => c.Trim()).ToArray();
        var labelIndex = labelColumn is null ? columns.Length - 1 : Array.IndexOf(columns, labelColumn);
        if (labelIndex < 0)
        {
            throw ModelException.InvalidArgument($"The dataset has no label column '{labelColumn}' (columns: {string.Join(", ", columns)}).");
        }

        if (columns.Length < 2)
        {
            throw ModelException.InvalidArgument("The dataset needs at least one feature column and a label column.");
        }

        var rows = new List<CsvRow>();
        var problems = new List<string>();
        var line = 1;
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            var cells = text.Split(',');
            if (cells.Length != columns.Length)
            {
                problems.Add($"line {line}: {cells.Length} values, the header has {columns.Length}");
                continue;
            }

            var features = new float[columns.Length - 1];
            var ok = true;
            for (int c = 0, f = 0; c < cells.Length; c++)
            {
                if (c == labelIndex)
                {
                    continue;
                }

                if (!float.TryParse(cells[c].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out features[f++]))
                {
                    problems.Add($"line {line}: column '{columns[c]}' value '{cells[c].Trim()}' is not a number");
                    ok = false;
                }
            }

            if (ok)
            {
                rows.Add(new CsvRow(line, features, cells[labelIndex].Trim()));
            }
        }

        if (problems.Count > 0)
        {
            var shown = problems.Take(MaxReportedProblems).ToList();
            if (problems.Count > shown.Count)
            {
                shown.Add($"… and {problems.Count - shown.Count} more");
            }

            throw new ModelException(ModelErrorKind.InvalidArgument, $"The dataset has malformed rows: {string.Join("; ", shown)}", shown);
        }

        if (rows.Count == 0)
        {
            throw ModelException.InvalidArgument("The dataset is empty: it has a header but no rows.");
        }

        return rows;
    }
}

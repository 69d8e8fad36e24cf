using Carml.Orleans.Onnx.Iris;

namespace Carml.Orleans.Onnx.Tests;

public sealed class IrisDatasetTests
{
    [Fact]
    public void Iris_csv_has_150_rows_50_per_species()
    {
        var dataset = IrisDataset.Load(RepositoryPaths.IrisCsv);

        Assert.Equal(150, dataset.Samples.Count);
        Assert.All(
            dataset.Samples.GroupBy(s => s.Species),
            group => Assert.Equal(50, group.Count()));
        Assert.Equal(["setosa", "versicolor", "virginica"], dataset.Samples.Select(s => s.Species).Distinct());
    }

    [Fact]
    public void Iris_csv_has_the_well_known_values()
    {
        var samples = IrisDataset.Load(RepositoryPaths.IrisCsv).Samples;

        Assert.Equal(new IrisSample(2, 5.1f, 3.5f, 1.4f, 0.2f, 0), samples[0]);
        Assert.Equal(new IrisSample(52, 7.0f, 3.2f, 4.7f, 1.4f, 1), samples[50]);
        Assert.Equal(new IrisSample(151, 5.9f, 3.0f, 5.1f, 1.8f, 2), samples[149]);

        // Fisher's values for rows 35 and 38, which the original UCI file had wrong.
        Assert.Equal([4.9f, 3.1f, 1.5f, 0.2f], samples[34].Features);
        Assert.Equal([4.9f, 3.6f, 1.4f, 0.1f], samples[37].Features);

        // Column means to three decimals, as every description of the data set gives them.
        double[] expectedMeans = [5.843, 3.057, 3.758, 1.199];
        for (var column = 0; column < 4; column++)
        {
            Assert.Equal(expectedMeans[column], samples.Average(s => (double)s.Features[column]), precision: 3);
        }
    }

    [Fact]
    public void Stratified_split_puts_every_fifth_row_of_each_species_in_the_test_set()
    {
        var split = IrisDataset.Load(RepositoryPaths.IrisCsv).SplitStratified();

        Assert.Equal(120, split.Train.Count);
        Assert.Equal(30, split.Test.Count);
        Assert.All(split.Test.GroupBy(s => s.SpeciesIndex), group => Assert.Equal(10, group.Count()));
        Assert.Equal(6, split.Test[0].LineNumber);
        Assert.Empty(split.Train.Intersect(split.Test));
    }

    [Theory]
    [InlineData("5.1,3.5,1.4,setosa", 3, "expected 5 comma-separated fields but found 4")]
    [InlineData("5.1,3.5,abc,0.2,setosa", 3, "petal_length must be a number but is 'abc'")]
    [InlineData("5.1,3.5,1.4,0.2,rosa", 3, "species must be one of setosa, versicolor, virginica but is 'rosa'")]
    [InlineData("5.1,3.5,1.4,-0.2,setosa", 3, "petal_width must not be negative")]
    [InlineData("5.1,3.5,1.4,NaN,setosa", 3, "petal_width must be a number but is 'NaN'")]
    public void Malformed_row_gives_an_error_naming_the_line(string badRow, int expectedLine, string expectedProblem)
    {
        var csv = $"{IrisDataset.Header}\n5.0,3.6,1.4,0.2,setosa\n{badRow}\n4.9,3.0,1.4,0.2,setosa\n";

        var error = Assert.Throws<InvalidDataException>(() => IrisDataset.Parse(new StringReader(csv), "flowers.csv"));

        Assert.StartsWith($"flowers.csv, line {expectedLine}: ", error.Message);
        Assert.Contains(expectedProblem, error.Message);
    }

    [Fact]
    public void Malformed_file_on_disk_gives_an_error_naming_the_path_and_line()
    {
        var path = Path.Combine(Path.GetTempPath(), $"iris-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, $"{IrisDataset.Header}\n5.1,3.5,1.4,0.2,setosa\n\n7.0,3.2,4.7,versicolor\n");
        try
        {
            var error = Assert.Throws<InvalidDataException>(() => IrisDataset.Load(path));

            Assert.StartsWith($"{path}, line 4: ", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Wrong_header_is_reported_on_line_one()
    {
        var error = Assert.Throws<InvalidDataException>(
            () => IrisDataset.Parse(new StringReader("a,b,c,d,e\n5.1,3.5,1.4,0.2,setosa\n"), "flowers.csv"));

        Assert.StartsWith("flowers.csv, line 1: expected the header", error.Message);
    }

    [Fact]
    public void Empty_file_is_reported()
    {
        var error = Assert.Throws<InvalidDataException>(() => IrisDataset.Parse(new StringReader("\n\n"), "flowers.csv"));

        Assert.Contains("empty", error.Message);
    }

    [Fact]
    public void Uci_style_species_names_are_accepted()
    {
        var dataset = IrisDataset.Parse(new StringReader($"{IrisDataset.Header}\n6.3,3.3,6.0,2.5,Iris-virginica\n"));

        Assert.Equal("virginica", dataset.Samples.Single().Species);
    }
}

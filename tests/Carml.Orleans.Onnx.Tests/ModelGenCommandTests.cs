using Carml.Orleans.ModelGen;

namespace Carml.Orleans.Onnx.Tests;

public sealed class ModelGenCommandTests : IDisposable
{
    private readonly string _outDirectory = Path.Combine(Path.GetTempPath(), $"modelgen-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_outDirectory))
        {
            Directory.Delete(_outDirectory, recursive: true);
        }
    }

    [Fact]
    public void Iris_command_writes_the_model_and_manifest_and_prints_accuracy()
    {
        var (exitCode, output, _) = Run("iris", "--data", RepositoryPaths.IrisCsv, "--out", _outDirectory);

        Assert.Equal(0, exitCode);
        Assert.Contains("test accuracy 0.", output);
        using var session = OrtSessions.Load(File.ReadAllBytes(Path.Combine(_outDirectory, "iris.onnx")));
        Assert.Contains("path: iris.onnx", File.ReadAllText(Path.Combine(_outDirectory, "iris.yaml")));
    }

    [Fact]
    public void Mlp_command_writes_a_runnable_model_and_its_manifest()
    {
        var (exitCode, _, _) = Run("mlp", "--input", "6", "--hidden", "8,8", "--output", "3", "--seed", "5", "--out", _outDirectory);

        Assert.Equal(0, exitCode);
        using var session = OrtSessions.Load(File.ReadAllBytes(Path.Combine(_outDirectory, "mlp.onnx")));
        _ = OrtSessions.RunFloat(session, "input", new float[12], [2, 6], "output", out var shape);
        Assert.Equal([2L, 3L], shape);
        var manifest = File.ReadAllText(Path.Combine(_outDirectory, "mlp.yaml"));
        Assert.Contains("shape: [-1, 6]", manifest);
        Assert.Contains("shape: [-1, 3]", manifest);
    }

    [Theory]
    [InlineData(new string[0], "Usage:")]
    [InlineData(new[] { "train" }, "unknown command 'train'")]
    [InlineData(new[] { "iris", "--out", "x" }, "option --data is required")]
    [InlineData(new[] { "mlp", "--input", "4", "--output", "two", "--out", "x" }, "option --output needs positive whole numbers")]
    [InlineData(new[] { "mlp", "--input", "4", "--output", "2", "--hidden", "8,0", "--out", "x" }, "option --hidden needs positive whole numbers")]
    [InlineData(new[] { "mlp", "--input", "4", "--output", "2", "--out", "x", "--colour", "red" }, "unknown option --colour")]
    [InlineData(new[] { "mlp", "--input" }, "option --input needs a value")]
    public void Usage_mistakes_exit_with_code_2_and_explain(string[] args, string expectedMessage)
    {
        var (exitCode, _, error) = Run(args);

        Assert.Equal(2, exitCode);
        Assert.Contains(expectedMessage, error);
    }

    [Fact]
    public void Malformed_data_exits_with_code_1_naming_the_line()
    {
        Directory.CreateDirectory(_outDirectory);
        var csv = Path.Combine(_outDirectory, "bad.csv");
        File.WriteAllText(csv, "sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,oops,0.2,setosa\n");

        var (exitCode, _, error) = Run("iris", "--data", csv, "--out", _outDirectory);

        Assert.Equal(1, exitCode);
        Assert.Contains("line 2", error);
    }

    private static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exitCode = ModelGenCommands.Run(args, output, error);
        return (exitCode, output.ToString(), error.ToString());
    }
}

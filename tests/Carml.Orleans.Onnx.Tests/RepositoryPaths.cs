namespace Carml.Orleans.Onnx.Tests;

/// <summary>Finds files in the checkout by walking up from the test binaries to the folder holding the solution.</summary>
internal static class RepositoryPaths
{
    private const string SolutionFileName = "Carml.Orleans.sln";

    private static readonly Lazy<string> Root = new(FindRoot);

    public static string RepositoryRoot => Root.Value;

    public static string IrisCsv => Path.Combine(RepositoryRoot, "data", "iris.csv");

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, SolutionFileName)))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No {SolutionFileName} found above {AppContext.BaseDirectory}.");
    }
}

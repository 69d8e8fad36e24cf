using System.Globalization;
using Carml.Orleans.Onnx.Iris;
using Carml.Orleans.Onnx.Manifests;
using Carml.Orleans.Onnx.Synthetic;

namespace Carml.Orleans.ModelGen;

/// <summary>The <c>iris</c> and <c>mlp</c> subcommands: each writes an ONNX model and its manifest into a folder.</summary>
internal static class ModelGenCommands
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int UsageError = 2;

    public const string Usage = """
        Usage:
          Carml.Orleans.ModelGen iris --data <iris.csv> --out <dir>
              Trains softmax regression on the Iris CSV; writes <dir>/iris.onnx and <dir>/iris.yaml.
          Carml.Orleans.ModelGen mlp --input <n> --output <m> --out <dir> [--hidden 64,64] [--seed 0] [--name mlp]
              Writes a seeded random MLP (Relu hidden layers, Softmax output) as <dir>/<name>.onnx and <dir>/<name>.yaml.
          Carml.Orleans.ModelGen resnet50 --out <dir> [--seed 0] [--name resnet50]
              Writes a ResNet-50-shaped graph with seeded random weights (FP32 [batch,3,224,224] -> [batch,1000], ~100 MB).
        Options:
          --max-batch-size <n>   max_batch_size written to the manifest (default 256)
        """;

    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error)
    {
        try
        {
            if (args.Count == 0 || args[0] is "-h" or "--help" or "help")
            {
                (args.Count == 0 ? error : output).WriteLine(Usage);
                return args.Count == 0 ? UsageError : Success;
            }

            var options = new CommandLineOptions([.. args.Skip(1)]);
            return args[0] switch
            {
                "iris" => Iris(options, output),
                "mlp" => Mlp(options, output),
                "resnet50" => ResNet50(options, output),
                _ => throw new UsageException($"unknown command '{args[0]}'; expected iris, mlp or resnet50"),
            };
        }
        catch (UsageException e)
        {
            error.WriteLine($"error: {e.Message}");
            error.WriteLine();
            error.WriteLine(Usage);
            return UsageError;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or InvalidOperationException)
        {
            error.WriteLine($"error: {e.Message}");
            return Failure;
        }
    }

    private static int Iris(CommandLineOptions options, TextWriter output)
    {
        var dataPath = options.Required("data");
        var outDirectory = options.Required("out");
        var maxBatchSize = MaxBatchSize(options);
        options.RejectUnread();
        if (!File.Exists(dataPath))
        {
            throw new UsageException($"--data file '{dataPath}' does not exist");
        }

        var trained = IrisSampleModel.Build(dataPath);
        var modelPath = Path.Combine(outDirectory, IrisSampleModel.ModelFileName);
        var manifestPath = Path.Combine(outDirectory, IrisSampleModel.ManifestFileName);
        Directory.CreateDirectory(outDirectory);
        File.WriteAllBytes(modelPath, trained.OnnxBytes);
        (trained.CreateManifest() with { MaxBatchSize = maxBatchSize }).Save(manifestPath);

        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"train accuracy {trained.TrainAccuracy:0.000} ({trained.TrainCount} rows), test accuracy {trained.TestAccuracy:0.000} ({trained.TestCount} rows), trained in {trained.BuildTime.TotalMilliseconds:0} ms"));
        output.WriteLine($"wrote {modelPath} ({trained.OnnxBytes.Length} bytes)");
        output.WriteLine($"wrote {manifestPath}");
        return Success;
    }

    private static int ResNet50(CommandLineOptions options, TextWriter output)
    {
        var seed = options.OptionalInt("seed", 0);
        var name = options.Optional("name") ?? "resnet50";
        var outDirectory = options.Required("out");
        var maxBatchSize = MaxBatchSize(options);
        options.RejectUnread();
        if (name.Length == 0 || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.Contains('/', StringComparison.Ordinal))
        {
            throw new UsageException($"--name '{name}' cannot be used as a file name");
        }

        var onnx = ResNet50ModelFactory.Create(seed, name);
        var modelFileName = $"{name}.onnx";
        var modelPath = Path.Combine(outDirectory, modelFileName);
        var manifestPath = Path.Combine(outDirectory, $"{name}.yaml");
        Directory.CreateDirectory(outDirectory);
        using (var file = File.Create(modelPath))
        {
            var bytes = onnx.ToBytes();
            file.Write(bytes);
        }

        new GeneratedModelManifest
        {
            Name = name,
            Description = onnx.DocString,
            MaxBatchSize = maxBatchSize,
            Inputs = [.. onnx.Graph.Inputs.Select(ManifestTensor.FromValueInfo)],
            Outputs = [.. onnx.Graph.Outputs.Select(ManifestTensor.FromValueInfo)],
            SourcePath = modelFileName,
        }.Save(manifestPath);

        output.WriteLine(onnx.DocString);
        output.WriteLine($"wrote {modelPath} ({new FileInfo(modelPath).Length} bytes)");
        output.WriteLine($"wrote {manifestPath}");
        return Success;
    }

    private static int Mlp(CommandLineOptions options, TextWriter output)
    {
        var inputSize = options.RequiredPositiveInt("input");
        var outputSize = options.RequiredPositiveInt("output");
        var hiddenSizes = options.OptionalPositiveIntList("hidden");
        var seed = options.OptionalInt("seed", 0);
        var name = options.Optional("name") ?? "mlp";
        var outDirectory = options.Required("out");
        var maxBatchSize = MaxBatchSize(options);
        options.RejectUnread();
        if (name.Length == 0 || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.Contains('/', StringComparison.Ordinal))
        {
            throw new UsageException($"--name '{name}' cannot be used as a file name");
        }

        var mlp = MlpModelFactory.Create(inputSize, hiddenSizes, outputSize, seed);
        var onnx = mlp.ToOnnxModel(name);
        var bytes = onnx.ToBytes();
        var modelFileName = $"{name}.onnx";
        var modelPath = Path.Combine(outDirectory, modelFileName);
        var manifestPath = Path.Combine(outDirectory, $"{name}.yaml");
        Directory.CreateDirectory(outDirectory);
        File.WriteAllBytes(modelPath, bytes);
        new GeneratedModelManifest
        {
            Name = name,
            Description = mlp.Describe(),
            MaxBatchSize = maxBatchSize,
            Inputs = [.. onnx.Graph.Inputs.Select(ManifestTensor.FromValueInfo)],
            Outputs = [.. onnx.Graph.Outputs.Select(ManifestTensor.FromValueInfo)],
            SourcePath = modelFileName,
        }.Save(manifestPath);

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"MLP {mlp.Architecture}, seed {seed}, {mlp.ParameterCount} parameters"));
        output.WriteLine($"wrote {modelPath} ({bytes.Length} bytes)");
        output.WriteLine($"wrote {manifestPath}");
        return Success;
    }

    private static int MaxBatchSize(CommandLineOptions options)
    {
        var value = options.OptionalInt("max-batch-size", 256);
        return value >= 0 ? value : throw new UsageException("--max-batch-size must not be negative");
    }
}

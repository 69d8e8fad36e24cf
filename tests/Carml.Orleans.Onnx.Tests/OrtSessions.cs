using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Carml.Orleans.Onnx.Tests;

/// <summary>Runs ONNX Runtime on in-memory models and copies results out before the native values are freed.</summary>
internal static class OrtSessions
{
    public static InferenceSession Load(byte[] model)
    {
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        return new InferenceSession(model, options);
    }

    public static float[] RunFloat(InferenceSession session, string inputName, float[] data, long[] shape, string outputName, out long[] outputShape)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new Dictionary<string, OrtValue> { [inputName] = input }, [outputName]);
        var output = outputs.First();
        outputShape = output.GetTensorTypeAndShape().Shape;
        return output.GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>Runs and returns every requested output as a copied array, keyed by name.</summary>
    public static Dictionary<string, Array> Run(InferenceSession session, IReadOnlyDictionary<string, OrtValue> inputs, params string[] outputNames)
    {
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, inputs, outputNames);
        var results = new Dictionary<string, Array>();
        var index = 0;
        foreach (var output in outputs)
        {
            var info = output.GetTensorTypeAndShape();
            results[outputNames[index++]] = info.ElementDataType switch
            {
                TensorElementType.Float => output.GetTensorDataAsSpan<float>().ToArray(),
                TensorElementType.Double => output.GetTensorDataAsSpan<double>().ToArray(),
                TensorElementType.Int32 => output.GetTensorDataAsSpan<int>().ToArray(),
                TensorElementType.Int64 => output.GetTensorDataAsSpan<long>().ToArray(),
                TensorElementType.String => output.GetStringTensorAsArray(),
                var other => throw new NotSupportedException($"Output type {other} is not handled by this test helper."),
            };
        }

        return results;
    }
}

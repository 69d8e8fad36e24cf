using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Carml.Orleans.Gateway.KServe.Grpc;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.ML.OnnxRuntime;

namespace Carml.Orleans.Bench;

/// <summary>
/// Comparison (b): what a user might write instead of a serving system: ASP.NET Core, the KServe v2 gRPC ModelInfer
/// and the HTTP binary tensor route, each request run on ONNX Runtime directly (no queue, no batching, no cluster).
/// Run as its own process: <c>Carml.Orleans.Bench minimal-server --http PORT --grpc PORT --models DIR</c>.
/// </summary>
internal static class MinimalServer
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = Cli.Parse(args);
        var httpPort = int.Parse(options["http"], CultureInfo.InvariantCulture);
        var grpcPort = int.Parse(options["grpc"], CultureInfo.InvariantCulture);
        var sessions = new Dictionary<string, InferenceSession>(StringComparer.Ordinal);
        using var sessionOptions = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        foreach (var file in Directory.GetFiles(options["models"], "*.onnx"))
        {
            sessions[Path.GetFileNameWithoutExtension(file)] = new InferenceSession(file, sessionOptions);
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = 512 * 1024 * 1024;
            k.ListenLocalhost(httpPort, l => l.Protocols = HttpProtocols.Http1);
            k.ListenLocalhost(grpcPort, l => l.Protocols = HttpProtocols.Http2);
        });
        builder.Services.AddGrpc(g => { g.MaxReceiveMessageSize = 512 * 1024 * 1024; g.MaxSendMessageSize = 512 * 1024 * 1024; });
        builder.Services.AddSingleton(new MinimalModels(sessions));
        var app = builder.Build();
        app.MapGrpcService<MinimalInferenceService>();
        app.MapGet("/v2/health/ready", () => Results.Ok());
        app.MapPost("/v2/models/{name}/infer", async (string name, HttpContext context, MinimalModels models) =>
        {
            var headerLength = int.Parse(context.Request.Headers["Inference-Header-Content-Length"].ToString(), CultureInfo.InvariantCulture);
            var body = new byte[context.Request.ContentLength ?? 0];
            await context.Request.Body.ReadExactlyAsync(body);
            using var header = JsonDocument.Parse(body.AsMemory(0, headerLength));
            var input = header.RootElement.GetProperty("inputs")[0];
            var shape = input.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var outputs = models.Run(name, input.GetProperty("name").GetString()!, shape, body.AsMemory(headerLength));
            var json = new StringBuilder("{\"model_name\":\"").Append(name).Append("\",\"outputs\":[");
            for (var i = 0; i < outputs.Count; i++)
            {
                json.Append(i > 0 ? "," : "").Append(CultureInfo.InvariantCulture, $"{{\"name\":\"{outputs[i].Name}\",\"datatype\":\"{outputs[i].Datatype}\",\"shape\":[{string.Join(",", outputs[i].Shape)}],\"parameters\":{{\"binary_data_size\":{outputs[i].Data.Length}}}}}");
            }

            var jsonBytes = Encoding.UTF8.GetBytes(json.Append("]}").ToString());
            context.Response.ContentType = "application/octet-stream";
            context.Response.Headers["Inference-Header-Content-Length"] = jsonBytes.Length.ToString(CultureInfo.InvariantCulture);
            context.Response.ContentLength = jsonBytes.Length + outputs.Sum(o => o.Data.Length);
            await context.Response.Body.WriteAsync(jsonBytes);
            foreach (var output in outputs)
            {
                await context.Response.Body.WriteAsync(output.Data);
            }
        });
        Console.WriteLine("minimal-server ready");
        await app.RunAsync();
        return 0;
    }
}

internal sealed record MinimalOutput(string Name, string Datatype, long[] Shape, byte[] Data);

/// <summary>One ONNX Runtime session per model; every request runs on its own.</summary>
internal sealed class MinimalModels(Dictionary<string, InferenceSession> sessions)
{
    public IReadOnlyList<MinimalOutput> Run(string model, string inputName, long[] shape, ReadOnlyMemory<byte> data)
    {
        var session = sessions[model];
        var floats = MemoryMarshal.Cast<byte, float>(data.Span).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(floats, shape);
        using var runOptions = new RunOptions();
        var outputNames = session.OutputMetadata.Keys.ToArray();
        using var results = session.Run(runOptions, [inputName], [input], outputNames);
        var outputs = new List<MinimalOutput>(outputNames.Length);
        var i = 0;
        foreach (var value in results)
        {
            var info = value.GetTensorTypeAndShape();
            var datatype = info.ElementDataType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64 ? "INT64" : "FP32";
            outputs.Add(new MinimalOutput(outputNames[i++], datatype, info.Shape, value.GetTensorMutableRawData().ToArray()));
        }

        return outputs;
    }
}

internal sealed class MinimalInferenceService(MinimalModels models) : GRPCInferenceService.GRPCInferenceServiceBase
{
    public override Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        var input = request.Inputs[0];
        var outputs = models.Run(request.ModelName, input.Name, [.. input.Shape], request.RawInputContents[0].Memory);
        var response = new ModelInferResponse { ModelName = request.ModelName };
        foreach (var output in outputs)
        {
            response.Outputs.Add(new ModelInferResponse.Types.InferOutputTensor { Name = output.Name, Datatype = output.Datatype, Shape = { output.Shape } });
            response.RawOutputContents.Add(UnsafeByteOperations.UnsafeWrap(output.Data));
        }

        return Task.FromResult(response);
    }
}

using System.Globalization;
using System.Runtime.InteropServices;
using Carml.Orleans.Gateway.KServe.Grpc;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

// A minimal KServe v2 gRPC client: sends one ModelInfer request with raw FP32 input and prints every output.
// Usage: carml-infer [--grpc http://127.0.0.1:8001] --model NAME [--version V] --input NAME --shape 1x4 --data 5.1,3.5,1.4,0.2
string? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

var model = Arg("--model");
var input = Arg("--input");
var shapeText = Arg("--shape");
var dataText = Arg("--data");
if (model is null || input is null || shapeText is null || dataText is null)
{
    Console.Error.WriteLine("usage: carml-infer [--grpc URL] --model NAME [--version V] --input NAME --shape 1x4 --data 5.1,3.5,1.4,0.2");
    return 2;
}

var shape = shapeText.Split('x').Select(long.Parse).ToArray();
var data = dataText.Split(',').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
using var channel = GrpcChannel.ForAddress(Arg("--grpc") ?? "http://127.0.0.1:8001");
var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
var request = new ModelInferRequest
{
    ModelName = model,
    ModelVersion = Arg("--version") ?? string.Empty,
    Inputs = { new ModelInferRequest.Types.InferInputTensor { Name = input, Datatype = "FP32", Shape = { shape } } },
    RawInputContents = { ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan())) },
};

try
{
    var response = await client.ModelInferAsync(request);
    Console.WriteLine($"model {response.ModelName} version {response.ModelVersion}");
    for (var i = 0; i < response.Outputs.Count; i++)
    {
        var output = response.Outputs[i];
        var raw = response.RawOutputContents[i].Span;
        var values = output.Datatype switch
        {
            "FP32" => MemoryMarshal.Cast<byte, float>(raw).ToArray().Select(v => v.ToString("G6", CultureInfo.InvariantCulture)),
            "FP64" => MemoryMarshal.Cast<byte, double>(raw).ToArray().Select(v => v.ToString("G6", CultureInfo.InvariantCulture)),
            "INT64" => MemoryMarshal.Cast<byte, long>(raw).ToArray().Select(v => v.ToString(CultureInfo.InvariantCulture)),
            "INT32" => MemoryMarshal.Cast<byte, int>(raw).ToArray().Select(v => v.ToString(CultureInfo.InvariantCulture)),
            "BOOL" => raw.ToArray().Select(v => v != 0 ? "true" : "false"),
            _ => raw.ToArray().Select(v => v.ToString(CultureInfo.InvariantCulture)),
        };
        Console.WriteLine($"{output.Name} {output.Datatype} [{string.Join(",", output.Shape)}]: {string.Join(" ", values)}");
    }

    return 0;
}
catch (RpcException e)
{
    Console.Error.WriteLine($"{e.StatusCode}: {e.Status.Detail}");
    return 1;
}

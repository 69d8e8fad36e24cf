using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Carml.Orleans.Gateway.KServe.Grpc;
using Google.Protobuf;
using Grpc.Net.Client;

namespace Carml.Orleans.Bench;

/// <summary>What one request reported about the server's side of it (zeros when the server does not say).</summary>
internal readonly record struct ServerSplit(long QueueMicroseconds, long ComputeMicroseconds, long BatchSize);

/// <summary>A way to send one inference request of a fixed input and wait for its answer.</summary>
internal interface ITarget : IDisposable
{
    string Name { get; }

    Task<ServerSplit> SendAsync(CancellationToken cancellationToken);
}

/// <summary>KServe v2 gRPC ModelInfer with raw_input_contents, one HTTP/2 channel shared by every worker.</summary>
internal sealed class GrpcTarget : ITarget
{
    private readonly GrpcChannel _channel;
    private readonly GRPCInferenceService.GRPCInferenceServiceClient _client;
    private readonly ModelInferRequest _request;
    private readonly Grpc.Core.Metadata? _headers;

    public GrpcTarget(string name, Uri address, BenchModel model, int rows, string? traceLevel = null)
    {
        _headers = traceLevel is null ? null : new Grpc.Core.Metadata { { "carml-trace-level", traceLevel } };
        Name = name;
        _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = 256 * 1024 * 1024,
            MaxSendMessageSize = 256 * 1024 * 1024,
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true },
        });
        _client = new GRPCInferenceService.GRPCInferenceServiceClient(_channel);
        var input = new ModelInferRequest.Types.InferInputTensor { Name = model.InputName, Datatype = "FP32" };
        input.Shape.AddRange(model.Shape(rows));
        _request = new ModelInferRequest { ModelName = model.Name, Inputs = { input }, RawInputContents = { ByteString.CopyFrom(model.Input(rows)) } };
    }

    public string Name { get; }

    public async Task<ServerSplit> SendAsync(CancellationToken cancellationToken)
    {
        var response = await _client.ModelInferAsync(_request, _headers, cancellationToken: cancellationToken);
        return new ServerSplit(Int(response, "queue_time_us"), Int(response, "compute_time_us"), Int(response, "batch_size"));
    }

    private static long Int(ModelInferResponse response, string name) =>
        response.Parameters.TryGetValue(name, out var value) ? value.Int64Param : 0;

    public void Dispose() => _channel.Dispose();
}

/// <summary>KServe v2 HTTP with the binary tensor extension in both directions, HTTP/1.1 keep-alive connections.</summary>
internal sealed class HttpBinaryTarget : ITarget
{
    private readonly HttpClient _http;
    private readonly string _path;
    private readonly byte[] _body;
    private readonly string _headerLength;

    public HttpBinaryTarget(string name, Uri address, BenchModel model, int rows, int connections, string? traceLevel = null)
    {
        Name = name;
        _http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = connections, UseProxy = false }) { BaseAddress = address };
        if (traceLevel is not null)
        {
            _http.DefaultRequestHeaders.Add("Carml-Trace-Level", traceLevel);
        }

        _path = $"/v2/models/{model.Name}/infer";
        var data = model.Input(rows);
        var shape = string.Join(",", model.Shape(rows));
        var header = Encoding.UTF8.GetBytes(
            "{\"inputs\":[{\"name\":\"" + model.InputName + "\",\"shape\":[" + shape + "],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":"
            + data.Length.ToString(CultureInfo.InvariantCulture) + "}}],\"parameters\":{\"binary_data_output\":true}}");
        _body = [.. header, .. data];
        _headerLength = header.Length.ToString(CultureInfo.InvariantCulture);
    }

    public string Name { get; }

    public async Task<ServerSplit> SendAsync(CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(_body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.Add("Inference-Header-Content-Length", _headerLength);
        using var response = await _http.PostAsync(_path, content, cancellationToken);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"HTTP {(int)response.StatusCode}: {Encoding.UTF8.GetString(body)}");
        }

        var jsonLength = response.Headers.TryGetValues("Inference-Header-Content-Length", out var values)
            ? int.Parse(values.First(), CultureInfo.InvariantCulture)
            : body.Length;
        return Split(body.AsSpan(0, jsonLength));
    }

    private static ServerSplit Split(ReadOnlySpan<byte> json)
    {
        long queue = 0, compute = 0, batch = 0;
        var reader = new Utf8JsonReader(json);
        var depth = 0;
        var inParameters = false;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject or JsonTokenType.StartArray:
                    depth++;
                    break;
                case JsonTokenType.EndObject or JsonTokenType.EndArray:
                    depth--;
                    inParameters &= depth >= 2;
                    break;
                case JsonTokenType.PropertyName when depth == 1 && reader.ValueTextEquals("parameters"u8):
                    inParameters = true;
                    break;
                case JsonTokenType.PropertyName when inParameters && depth == 2:
                    var name = reader.GetString();
                    reader.Read();
                    var value = reader.TokenType == JsonTokenType.Number ? reader.GetInt64() : 0;
                    if (name == "queue_time_us") queue = value;
                    else if (name == "compute_time_us") compute = value;
                    else if (name == "batch_size") batch = value;
                    break;
            }
        }

        return new ServerSplit(queue, compute, batch);
    }

    public void Dispose() => _http.Dispose();
}


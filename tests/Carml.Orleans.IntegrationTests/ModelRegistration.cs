using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Carml.Orleans.Tests;

/// <summary>Registers models through the management API, as a user would.</summary>
public static class ModelRegistration
{
    public static MultipartFormDataContent Multipart(string manifest, byte[]? model)
    {
        var content = new MultipartFormDataContent
        {
            { new StringContent(manifest, System.Text.Encoding.UTF8, "application/yaml"), "manifest", "manifest.yaml" },
        };
        if (model is not null)
        {
            var file = new ByteArrayContent(model);
            file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            content.Add(file, "model", "model.onnx");
        }

        return content;
    }

    public static async Task<JsonElement> RegisterAsync(HttpClient http, string manifest, byte[] model, string? visibility = null)
    {
        var path = visibility is null ? "/api/models" : $"/api/models?visibility={Uri.EscapeDataString(visibility)}";
        using var response = await http.PostAsync(path, Multipart(manifest, model), TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"Registration answered {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        try
        {
            return JsonDocument.Parse(body).RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"Response {(int)response.StatusCode} is not JSON: {body}", e);
        }
    }

    public static Task<HttpResponseMessage> PostJsonAsync(this HttpClient http, string path, string json) =>
        http.PostAsync(path, new StringContent(json, System.Text.Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
}

using System.Text.Json;
using System.Text.Json.Serialization;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>How run records are stored as JSON in the run stores (readable in the database, stable field names).</summary>
public static class RunJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public static string Serialize(RunRecord run) => JsonSerializer.Serialize(run, Options);

    public static RunRecord Deserialize(string json) =>
        JsonSerializer.Deserialize<RunRecord>(json, Options) ?? throw new JsonException("A stored run record is empty.");
}

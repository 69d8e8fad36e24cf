using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Carml.Orleans.Gateway.Security;

/// <summary>
/// <c>carml-gateway keys …</c>: <c>new</c> prints a fresh key for <c>Carml:Auth:BootstrapAdminKey</c> (the first
/// admin); <c>create</c>, <c>list</c> and <c>revoke</c> call a running gateway's <c>/api/keys</c> with an admin key.
/// </summary>
public static class KeysCommand
{
    private const string Usage = """
        usage: keys new
               keys create --user NAME [--org ORG] [--group G]... [--admin] [--name TEXT] [--url URL] [--key ADMIN_KEY]
               keys list [--url URL] [--key ADMIN_KEY]
               keys revoke ID [--url URL] [--key ADMIN_KEY]
        --url defaults to http://127.0.0.1:8000; --key to $CARML_API_KEY.
        """;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, HttpMessageHandler? handler = null)
    {
        if (args.Length == 0)
        {
            await error.WriteLineAsync(Usage);
            return 2;
        }

        if (args[0] == "new")
        {
            var (_, key) = ApiKeyFormat.Generate();
            await output.WriteLineAsync(key);
            await error.WriteLineAsync("Give it to the gateway as its first admin key, e.g. export Carml__Auth__BootstrapAdminKey=<the key above>");
            return 0;
        }

        var options = Parse(args[1..], out var positional, out var problem);
        if (problem is not null || args[0] is not ("create" or "list" or "revoke"))
        {
            await error.WriteLineAsync(problem ?? Usage);
            return 2;
        }

        var adminKey = options.GetValueOrDefault("key")?.FirstOrDefault() ?? Environment.GetEnvironmentVariable("CARML_API_KEY");
        if (string.IsNullOrEmpty(adminKey))
        {
            await error.WriteLineAsync("An admin key is needed: --key or $CARML_API_KEY.");
            return 2;
        }

        using var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        http.BaseAddress = new Uri(options.GetValueOrDefault("url")?.FirstOrDefault() ?? "http://127.0.0.1:8000");
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
        HttpResponseMessage response;
        switch (args[0])
        {
            case "create":
                if (options.GetValueOrDefault("user")?.FirstOrDefault() is not { Length: > 0 } user)
                {
                    await error.WriteLineAsync("--user is required.");
                    return 2;
                }

                response = await http.PostAsJsonAsync(AccessRules.KeysPath, new ApiKeyRequest(
                    user, options.GetValueOrDefault("org")?.FirstOrDefault(), options.GetValueOrDefault("group") ?? [],
                    options.ContainsKey("admin"), options.GetValueOrDefault("name")?.FirstOrDefault()), Json);
                break;
            case "list":
                response = await http.GetAsync(AccessRules.KeysPath);
                break;
            default:
                if (positional.Count != 1)
                {
                    await error.WriteLineAsync("keys revoke ID");
                    return 2;
                }

                response = await http.DeleteAsync($"{AccessRules.KeysPath}/{Uri.EscapeDataString(positional[0])}");
                break;
        }

        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            await error.WriteLineAsync($"{(int)response.StatusCode} {response.ReasonPhrase}: {body}");
            return 1;
        }

        await output.WriteLineAsync(body);
        return 0;
    }

    private static Dictionary<string, List<string>> Parse(string[] args, out List<string> positional, out string? problem)
    {
        var options = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        positional = [];
        problem = null;
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(args[i]);
                continue;
            }

            var name = args[i][2..];
            if (name == "admin")
            {
                options[name] = ["true"];
                continue;
            }

            if (name is not ("user" or "org" or "group" or "name" or "url" or "key") || i + 1 >= args.Length)
            {
                problem = $"Unknown option or missing value: {args[i]}\n{Usage}";
                break;
            }

            (options.TryGetValue(name, out var list) ? list : options[name] = []).Add(args[++i]);
        }

        return options;
    }
}

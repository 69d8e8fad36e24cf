using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;

namespace Carml.Orleans.Bench;

/// <summary>
/// How long a tus upload takes to finish: starts Carml standalone from a gateway build (this repository's by default,
/// or another checkout's with --gateway-root, to compare revisions), uploads fresh random bytes in PATCH chunks and
/// times the final PATCH (which appends the last chunk and moves the upload into the content store) and the whole
/// upload. Prints a Markdown table.
/// </summary>
internal static class UploadFinish
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = Cli.Parse(args);
        var gatewayRoot = Path.GetFullPath(options.Get("gateway-root", Suite.FindRoot()));
        var megabytes = (int)options.Number("mb", 200);
        var chunkBytes = (int)options.Number("chunk-mb", 16) * 1024 * 1024;
        var runs = (int)options.Number("runs", 3);
        var work = Path.Combine(Path.GetTempPath(), "cob-upload-bench-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(work);
        try
        {
            using var server = await ServerProcess.StartCarmlAsync(gatewayRoot, work);
            using var http = new HttpClient { BaseAddress = server.Http, Timeout = TimeSpan.FromMinutes(10) };
            var content = new byte[megabytes * 1024L * 1024L];
            Console.WriteLine($"gateway: {gatewayRoot}; {megabytes} MiB in {chunkBytes / (1024 * 1024)} MiB PATCHes; data under {work}");
            Console.WriteLine();
            Console.WriteLine("| run | final PATCH (ms) | whole upload (ms) | sha256 ok |");
            Console.WriteLine("|---|---|---|---|");
            for (var run = 1; run <= runs; run++)
            {
                RandomNumberGenerator.Fill(content); // fresh bytes: the store must not already hold them
                var (final, total, sha) = await UploadAsync(http, content, chunkBytes);
                var ok = sha == Convert.ToHexStringLower(SHA256.HashData(content));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {run} | {final.TotalMilliseconds:F0} | {total.TotalMilliseconds:F0} | {ok} |"));
                if (!ok)
                {
                    return 1;
                }
            }

            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<(TimeSpan FinalPatch, TimeSpan Total, string? Sha256)> UploadAsync(HttpClient http, byte[] content, int chunkBytes)
    {
        var whole = Stopwatch.StartNew();
        using var create = new HttpRequestMessage(HttpMethod.Post, "/api/uploads/");
        create.Headers.Add("Tus-Resumable", "1.0.0");
        create.Headers.Add("Upload-Length", content.Length.ToString(CultureInfo.InvariantCulture));
        using var created = await http.SendAsync(create);
        created.EnsureSuccessStatusCode();
        var location = created.Headers.Location ?? throw new InvalidOperationException("The creation answered without a Location.");
        var final = TimeSpan.Zero;
        for (var offset = 0; offset < content.Length; offset += chunkBytes)
        {
            var length = Math.Min(chunkBytes, content.Length - offset);
            using var patch = new HttpRequestMessage(HttpMethod.Patch, location)
            {
                Content = new ByteArrayContent(content, offset, length),
            };
            patch.Headers.Add("Tus-Resumable", "1.0.0");
            patch.Headers.Add("Upload-Offset", offset.ToString(CultureInfo.InvariantCulture));
            patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/offset+octet-stream");
            var timer = Stopwatch.StartNew();
            using var patched = await http.SendAsync(patch);
            patched.EnsureSuccessStatusCode();
            final = timer.Elapsed;
        }

        whole.Stop();
        var upload = await http.GetFromJsonAsync<UploadView>(location);
        return (final, whole.Elapsed, upload?.Sha256);
    }

    private sealed record UploadView(string Id, long Offset, string State, string? Sha256);
}

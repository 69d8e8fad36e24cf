using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace Carml.Orleans.Tests;

/// <summary>The real tus-js-client (Node) uploads in small chunks, aborts, and resumes against the gateway.</summary>
[Collection(GatewayCollection.Name)]
public sealed class TusJsClientTests(GatewayFixture fixture)
{
    private static readonly string ClientDirectory = Path.Combine(RepositoryPaths.Root, "tests", "tus-client");
    private static readonly SemaphoreSlim InstallLock = new(1, 1);

    [Fact]
    public async Task Tus_js_client_uploads_in_chunks_aborts_and_resumes_from_the_server_offset()
    {
        await EnsureClientInstalledAsync();
        var file = Path.Combine(Path.GetTempPath(), $"carml-tus-{Guid.NewGuid():N}.bin");
        var bytes = RandomNumberGenerator.GetBytes(200_000);
        await File.WriteAllBytesAsync(file, bytes, TestContext.Current.CancellationToken);
        try
        {
            var endpoint = new Uri(fixture.Gateway.Http.BaseAddress!, "/api/uploads/").ToString();
            var output = await RunAsync("node", ["upload.mjs", endpoint, file, "32768"], TimeSpan.FromSeconds(120));

            var result = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
            Assert.True(result.GetProperty("done").GetBoolean(), output);
            Assert.True(result.GetProperty("resumedFrom").GetInt64() >= 65536, $"the second session should resume past the aborted chunks: {output}");
            var location = new Uri(result.GetProperty("url").GetString()!).AbsolutePath;
            var info = await (await fixture.Gateway.Http.GetAsync(location, TestContext.Current.CancellationToken)).JsonAsync();
            Assert.Equal("completed", info.GetProperty("state").GetString());
            Assert.Equal("model.onnx", info.GetProperty("metadata").GetProperty("filename").GetString());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), info.GetProperty("sha256").GetString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Installs tus-js-client from the lock file once (npm ci); skips with a reason where Node or npm is missing.</summary>
    private static async Task EnsureClientInstalledAsync()
    {
        await InstallLock.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (Directory.Exists(Path.Combine(ClientDirectory, "node_modules", "tus-js-client")))
            {
                return;
            }

            try
            {
                await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], TimeSpan.FromSeconds(300));
            }
            catch (System.ComponentModel.Win32Exception)
            {
                Assert.Skip("npm is not installed: the tus-js-client test needs Node.js and npm (CI installs them).");
            }
        }
        finally
        {
            InstallLock.Release();
        }
    }

    private static async Task<string> RunAsync(string program, string[] arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = ClientDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not finish within {timeout.TotalSeconds} s.");
        }

        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}: {output}\n{await stderr}");
        return output;
    }
}

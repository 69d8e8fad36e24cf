using System.Net;
using Carml.Orleans.Transfers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Tests;

/// <summary>
/// s3:// downloads through the AWS SDK against a local S3-compatible endpoint (path-style GetObject), which checks
/// that requests arrive signed with Signature Version 4 for the configured access key and region.
/// </summary>
public sealed class S3DownloadTests : IAsyncDisposable
{
    private static readonly byte[] Object = "model bytes from s3"u8.ToArray();
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "carml-s3-" + Guid.NewGuid().ToString("N"));
    private readonly WebApplication _endpoint;
    private readonly Uri _address;
    private readonly List<string> _authorizations = [];

    public S3DownloadTests()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _endpoint = builder.Build();
        _endpoint.MapGet("/{bucket}/{**key}", (string bucket, string key, HttpContext context) =>
        {
            lock (_authorizations)
            {
                _authorizations.Add(context.Request.Headers.Authorization.ToString());
            }

            if (bucket != "models" || key != "iris/model.onnx")
            {
                return Results.Text("<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>", "application/xml", statusCode: 404);
            }

            context.Response.Headers.ETag = "\"" + Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(Object)) + "\"";
            return Results.Bytes(Object, "application/octet-stream");
        });
        _endpoint.StartAsync().GetAwaiter().GetResult();
        _address = new Uri(_endpoint.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    public async ValueTask DisposeAsync()
    {
        await _endpoint.StopAsync();
        await _endpoint.DisposeAsync();
        if (Directory.Exists(_cache))
        {
            Directory.Delete(_cache, recursive: true);
        }
    }

    private DownloadManager Manager() => new(new HttpClient(), Options.Create(new DownloadOptions
    {
        CacheDirectory = _cache,
        S3 = new S3DownloadOptions { ServiceUrl = _address.ToString(), Region = "eu-test-1", AccessKey = "AKIDTEST", SecretKey = "secret" },
    }), TimeProvider.System, NullLogger<DownloadManager>.Instance);

    [Fact]
    public async Task S3_object_is_fetched_with_a_signed_path_style_request()
    {
        var file = await Manager().FetchAsync("s3://models/iris/model.onnx", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(Object, await File.ReadAllBytesAsync(file.Path, TestContext.Current.CancellationToken));
        var authorization = Assert.Single(_authorizations);
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=AKIDTEST/", authorization, StringComparison.Ordinal);
        Assert.Contains("/eu-test-1/s3/aws4_request", authorization, StringComparison.Ordinal);
        Assert.Contains("Signature=", authorization, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_s3_object_is_not_found()
    {
        var error = await Assert.ThrowsAsync<DownloadException>(() => Manager().FetchAsync("s3://models/nope.onnx", cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(DownloadErrorKind.NotFound, error.Kind);
    }
}

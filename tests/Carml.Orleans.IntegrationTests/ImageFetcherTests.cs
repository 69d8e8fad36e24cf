using System.Net;
using Carml.Orleans.Core;
using Carml.Orleans.Gateway.Predictor;
using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Tests;

/// <summary>The predictor's URL fetcher against a real loopback server: limits, redirects and the address check.</summary>
public sealed class ImageFetcherTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ImageFetcher Fetcher(bool allowLoopback, long maxBytes = 1024, int maxRedirects = 3, double timeoutSeconds = 10) => new(
        Options.Create(new PredictorOptions
        {
            MaxImageBytes = maxBytes,
            Urls = new ImageFetchOptions { AllowLoopback = allowLoopback, MaxRedirects = maxRedirects, Timeout = TimeSpan.FromSeconds(timeoutSeconds) },
        }),
        NullLogger<ImageFetcher>.Instance);

    [Theory]
    [InlineData("127.0.0.1", AddressScope.Loopback)]
    [InlineData("::1", AddressScope.Loopback)]
    [InlineData("10.1.2.3", AddressScope.Private)]
    [InlineData("172.20.0.1", AddressScope.Private)]
    [InlineData("192.168.1.1", AddressScope.Private)]
    [InlineData("169.254.169.254", AddressScope.Private)]
    [InlineData("100.64.0.1", AddressScope.Private)]
    [InlineData("fd00::1", AddressScope.Private)]
    [InlineData("fe80::1", AddressScope.Private)]
    [InlineData("::ffff:10.0.0.1", AddressScope.Private)]
    [InlineData("0.0.0.0", AddressScope.Forbidden)]
    [InlineData("224.0.0.1", AddressScope.Forbidden)]
    [InlineData("93.184.216.34", AddressScope.Public)]
    [InlineData("172.32.0.1", AddressScope.Public)]
    [InlineData("2606:4700::1111", AddressScope.Public)]
    public void Addresses_are_classified_by_range(string address, AddressScope scope) =>
        Assert.Equal(scope, ImageFetcher.Classify(IPAddress.Parse(address)));

    [Fact]
    public async Task Loopback_is_refused_by_default_before_any_request_reaches_the_server()
    {
        await using var server = await LocalWebServer.StartAsync(app => app.MapGet("/a.png", () => Results.Bytes([1, 2, 3], "image/png")));
        using var fetcher = Fetcher(allowLoopback: false);

        var e = await Assert.ThrowsAsync<ModelException>(() => fetcher.FetchAsync(server.Url("a.png"), Ct));

        Assert.Equal(ModelErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("AllowLoopback", e.Message);
        Assert.Equal(0, server.Requests);
    }

    [Fact]
    public async Task Redirects_are_followed_up_to_the_limit_and_no_further()
    {
        await using var server = await LocalWebServer.StartAsync(app =>
        {
            app.MapGet("/hop/{n:int}", (int n) => n == 0 ? Results.Bytes([7, 7], "image/png") : Results.Redirect($"/hop/{n - 1}"));
        });
        using var fetcher = Fetcher(allowLoopback: true, maxRedirects: 3);

        var bytes = await fetcher.FetchAsync(server.Url("hop/3"), Ct);
        var e = await Assert.ThrowsAsync<ModelException>(() => fetcher.FetchAsync(server.Url("hop/4"), Ct));

        Assert.Equal([7, 7], bytes);
        Assert.Contains("more than 3 times", e.Message);
    }

    [Fact]
    public async Task Body_over_the_byte_limit_is_payload_too_large_with_or_without_a_content_length()
    {
        await using var server = await LocalWebServer.StartAsync(app =>
        {
            app.MapGet("/big", () => Results.Bytes(new byte[4096], "image/png"));
            app.MapGet("/chunked", async (HttpResponse response) =>
            {
                for (var i = 0; i < 8; i++)
                {
                    await response.Body.WriteAsync(new byte[512]);
                    await response.Body.FlushAsync();
                }
            });
        });
        using var fetcher = Fetcher(allowLoopback: true, maxBytes: 1024);

        var declared = await Assert.ThrowsAsync<ModelException>(() => fetcher.FetchAsync(server.Url("big"), Ct));
        var streamed = await Assert.ThrowsAsync<ModelException>(() => fetcher.FetchAsync(server.Url("chunked"), Ct));

        Assert.Equal(ModelErrorKind.PayloadTooLarge, declared.Kind);
        Assert.Equal(ModelErrorKind.PayloadTooLarge, streamed.Kind);
    }

    [Fact]
    public async Task Error_status_is_an_invalid_argument_naming_the_status()
    {
        await using var server = await LocalWebServer.StartAsync(app => app.MapGet("/gone", () => Results.NotFound()));
        using var fetcher = Fetcher(allowLoopback: true);

        var e = await Assert.ThrowsAsync<ModelException>(() => fetcher.FetchAsync(server.Url("gone"), Ct));

        Assert.Contains("answered 404", e.Message);
    }

    [Fact]
    public async Task Server_that_never_answers_is_cut_off_at_the_time_limit()
    {
        var never = new TaskCompletionSource();
        await using var server = await LocalWebServer.StartAsync(app => app.MapGet("/stall", async () =>
        {
            await never.Task;
            return Results.Ok();
        }));
        using var fetcher = Fetcher(allowLoopback: true, timeoutSeconds: 0.5);

        try
        {
            var e = await Assert.ThrowsAsync<ModelException>(() => fetcher.FetchAsync(server.Url("stall"), Ct));

            Assert.Equal(ModelErrorKind.InvalidArgument, e.Kind);
            Assert.Contains("within 0.5 s", e.Message);
        }
        finally
        {
            never.SetResult();
        }
    }
}

using System.Net;
using System.Net.Sockets;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Predictor;

/// <summary>Where an address leads: the public internet, this host, or a network the gateway must not reach for a client.</summary>
public enum AddressScope
{
    Public,
    Loopback,
    Private,

    /// <summary>Unspecified, multicast or broadcast: never a server to fetch from.</summary>
    Forbidden,
}

/// <summary>
/// Fetches one image per URL for the predictor API with strict limits: http(s) only, a time limit per URL, a byte limit,
/// redirects followed by hand (bounded, loops refused), no proxy, and an address check on every connection (after DNS,
/// so a name that resolves to a private address, or a redirect to one, is refused before any packet is sent).
/// Every failure is the client's URL being unusable: InvalidArgument, or PayloadTooLarge for an oversized body.
/// </summary>
public sealed partial class ImageFetcher : IDisposable
{
    private readonly HttpClient _http;
    private readonly ImageFetchOptions _urls;
    private readonly long _maxBytes;
    private readonly ILogger<ImageFetcher> _logger;

    public ImageFetcher(IOptions<PredictorOptions> options, ILogger<ImageFetcher> logger)
    {
        _urls = options.Value.Urls;
        _maxBytes = options.Value.MaxImageBytes;
        _logger = logger;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = _urls.Timeout,
            ConnectCallback = ConnectAsync,
        };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("carml-orleans-predictor/1.0");
    }

    public static AddressScope Classify(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address))
        {
            return AddressScope.Loopback;
        }

        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return (b[0], b[1], b[2]) switch
            {
                (0, _, _) or (>= 224, _, _) => AddressScope.Forbidden, // "this network", multicast, reserved, broadcast
                (10, _, _) => AddressScope.Private,
                (100, >= 64 and < 128, _) => AddressScope.Private, // carrier-grade NAT
                (169, 254, _) => AddressScope.Private, // link-local, cloud metadata
                (172, >= 16 and < 32, _) => AddressScope.Private,
                (192, 168, _) => AddressScope.Private,
                (192, 0, 0) => AddressScope.Private, // IETF protocol assignments
                (198, 18 or 19, _) => AddressScope.Private, // benchmarking
                _ => AddressScope.Public,
            };
        }

        if (address.Equals(IPAddress.IPv6Any) || address.IsIPv6Multicast)
        {
            return AddressScope.Forbidden;
        }

        var first = address.GetAddressBytes()[0];
        return address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6UniqueLocal || (first & 0xfe) == 0xfc
            ? AddressScope.Private
            : AddressScope.Public;
    }

    /// <summary>Whether the settings allow connecting to <paramref name="address"/>.</summary>
    public bool Allows(IPAddress address) => Classify(address) switch
    {
        AddressScope.Public => true,
        AddressScope.Loopback => _urls.AllowLoopback,
        AddressScope.Private => _urls.AllowPrivateNetworks,
        _ => false,
    };

    /// <summary>The body of <paramref name="url"/>, after at most <see cref="ImageFetchOptions.MaxRedirects"/> redirects.</summary>
    public async Task<byte[]> FetchAsync(string url, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var current) || current.Scheme is not ("http" or "https"))
        {
            throw ModelException.InvalidArgument($"'{url}' is not an absolute http or https URL.");
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(_urls.Timeout);
        var visited = new List<Uri> { current };
        try
        {
            while (true)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, current);
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, limit.Token);
                var status = (int)response.StatusCode;
                if (status is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    var next = location.IsAbsoluteUri ? location : new Uri(current, location);
                    if (next.Scheme is not ("http" or "https"))
                    {
                        throw ModelException.InvalidArgument($"'{url}' redirects to '{next}', which is not http or https.");
                    }

                    if (visited.Contains(next))
                    {
                        throw ModelException.InvalidArgument($"'{url}' redirects in a loop: {string.Join(" → ", visited.Append(next))}.");
                    }

                    if (visited.Count > _urls.MaxRedirects)
                    {
                        throw ModelException.InvalidArgument($"'{url}' redirects more than {_urls.MaxRedirects} times (Carml:Predictors:Urls:MaxRedirects).");
                    }

                    visited.Add(next);
                    current = next;
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    throw ModelException.InvalidArgument($"'{url}' answered {status} {response.ReasonPhrase}.");
                }

                return await ReadBodyAsync(url, response, limit.Token);
            }
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw ModelException.InvalidArgument($"'{url}' did not deliver the image within {_urls.Timeout.TotalSeconds:0.###} s (Carml:Predictors:Urls:Timeout).");
        }
        catch (HttpRequestException e) when (Find<AddressRefusedException>(e) is { } refused)
        {
            LogRefused(_logger, refused.Host, refused.Addresses);
            throw ModelException.InvalidArgument($"'{url}' is refused: {refused.Message}");
        }
        catch (HttpRequestException e)
        {
            throw ModelException.InvalidArgument($"'{url}' cannot be fetched: {Describe(e)}.");
        }
    }

    public void Dispose() => _http.Dispose();

    private async Task<byte[]> ReadBodyAsync(string url, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength is { } length && length > _maxBytes)
        {
            throw TooLarge(url, $"{length} bytes");
        }

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > _maxBytes)
            {
                throw TooLarge(url, "more bytes");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private ModelException TooLarge(string url, string size) => new(ModelErrorKind.PayloadTooLarge,
        $"'{url}' sends {size} than the {_maxBytes} bytes an image may have (Carml:Predictors:MaxImageBytes).");

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken);
        var allowed = addresses.Where(Allows).ToArray();
        if (allowed.Length == 0)
        {
            throw new AddressRefusedException(host, addresses);
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static T? Find<T>(Exception e)
        where T : Exception
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is T found)
            {
                return found;
            }
        }

        return null;
    }

    private static string Describe(HttpRequestException e) =>
        Find<SocketException>(e) is { } socket ? $"{socket.SocketErrorCode} ({socket.Message})" : e.Message;

    [LoggerMessage(EventId = 2301, Level = LogLevel.Warning, Message = "Refused to fetch an image from {Host}: it resolves to {Addresses}")]
    private static partial void LogRefused(ILogger logger, string host, string addresses);

    private sealed class AddressRefusedException(string host, IPAddress[] addresses) : Exception(Explain(host, addresses))
    {
        public string Host { get; } = host;

        public string Addresses { get; } = string.Join(", ", addresses.Select(a => a.ToString()));

        private static string Explain(string host, IPAddress[] addresses)
        {
            if (addresses.Length == 0)
            {
                return $"{host} resolves to no address.";
            }

            var scopes = addresses.Select(Classify).Distinct().Select(s => s switch
            {
                AddressScope.Loopback => "loopback (allow with Carml:Predictors:Urls:AllowLoopback)",
                AddressScope.Private => "a private or link-local network (allow with Carml:Predictors:Urls:AllowPrivateNetworks)",
                _ => "an unspecified, multicast or reserved address (never fetched)",
            });
            return $"{host} resolves to {string.Join(", ", addresses.Select(a => a.ToString()))}, which is {string.Join("; ", scopes)}.";
        }
    }
}

using System.ComponentModel.DataAnnotations;

namespace Carml.Orleans.Gateway;

/// <summary>How the gateway listens and what it accepts. Section <c>Carml:Gateway</c>.</summary>
public sealed class GatewayOptions
{
    public const string Section = "Carml:Gateway";

    /// <summary>Address to bind; loopback by default so a fresh install is not open to the network.</summary>
    [Required]
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>KServe v2 HTTP, the REST management API and OpenAPI (HTTP/1.1); 0 picks a free port.</summary>
    [Range(0, 65535)]
    public int HttpPort { get; set; } = 8000;

    /// <summary>KServe v2 gRPC (cleartext HTTP/2); 0 picks a free port.</summary>
    [Range(0, 65535)]
    public int GrpcPort { get; set; } = 8001;

    /// <summary>Prometheus scrape endpoint <c>/metrics</c> on its own port (Triton's convention); 0 picks a free port, -1 serves none (<c>/metrics</c> stays on the HTTP port).</summary>
    [Range(-1, 65535)]
    public int MetricsPort { get; set; } = 8002;

    /// <summary>Largest request body or gRPC message accepted, in bytes (default 500 MB, as CarML's gateway).</summary>
    [Range(1024, int.MaxValue)]
    public int MaxRequestBytes { get; set; } = 500 * 1024 * 1024;

    /// <summary>How long a resolved model route is reused before the gateway asks the grains again.</summary>
    [Range(0, 3600)]
    public double RouteCacheSeconds { get; set; } = 5;

    /// <summary>Name reported by the KServe server metadata endpoints.</summary>
    [Required]
    public string ServerName { get; set; } = "carml-orleans";
}

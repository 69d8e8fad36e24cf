using System.ComponentModel.DataAnnotations;

namespace Carml.Orleans.Registry.Consul;

/// <summary>
/// How to reach the Consul agent. Section <c>Carml:Consul</c>; when <see cref="Address"/> or <see cref="Token"/> is not
/// configured, <c>CONSUL_HTTP_ADDR</c> and <c>CONSUL_HTTP_TOKEN</c> are used, as the Consul CLI does.
/// </summary>
public sealed class ConsulOptions
{
    public const string Section = "Carml:Consul";
    public const string AddressVariable = "CONSUL_HTTP_ADDR";
    public const string TokenVariable = "CONSUL_HTTP_TOKEN";
    public const string DefaultAddress = "http://127.0.0.1:8500";

    /// <summary>The agent's HTTP API, e.g. <c>http://127.0.0.1:8500</c>; a bare <c>host:port</c> means http.</summary>
    [Required]
    public string Address { get; set; } = string.Empty;

    /// <summary>Datacenter to query (<c>?dc=</c>); empty means the agent's own.</summary>
    public string? Datacenter { get; set; }

    /// <summary>ACL token sent as <c>X-Consul-Token</c>. Never logged.</summary>
    public string? Token { get; set; }

    /// <summary>Time limit of one non-blocking request.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How many times a transient failure (connection refused, timeout, 429, 5xx "no leader") is retried.</summary>
    [Range(0, 20)]
    public int MaxRetries { get; set; } = 3;

    /// <summary>First retry delay; doubled on each retry.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The <c>wait</c> of blocking queries (Consul caps it at 10 minutes).</summary>
    public TimeSpan BlockingWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Least time between two iterations of a watch loop, so a misbehaving index cannot spin it.</summary>
    public TimeSpan MinimumWatchInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Fills unset values from the environment and normalises the address.</summary>
    public void ApplyEnvironment() => ApplyEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>Fills unset values from <paramref name="variable"/> (the environment) and normalises the address.</summary>
    public void ApplyEnvironment(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        if (string.IsNullOrWhiteSpace(Address))
        {
            Address = variable(AddressVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : DefaultAddress;
        }

        if (!Address.Contains("://", StringComparison.Ordinal))
        {
            Address = "http://" + Address;
        }

        if (string.IsNullOrEmpty(Token) && variable(TokenVariable) is { Length: > 0 } token)
        {
            Token = token;
        }
    }

    public Uri BaseAddress => new(Address.TrimEnd('/') + "/");

    /// <summary>Returns validation failures, or an empty list.</summary>
    public IReadOnlyList<string> Validate()
    {
        var failures = new List<string>();
        if (!Uri.TryCreate(Address, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            failures.Add($"Carml:Consul:Address ('{Address}') must be an http or https URL such as http://127.0.0.1:8500.");
        }

        if (RequestTimeout <= TimeSpan.Zero)
        {
            failures.Add("Carml:Consul:RequestTimeout must be positive.");
        }

        if (BlockingWait <= TimeSpan.Zero || BlockingWait > TimeSpan.FromMinutes(10))
        {
            failures.Add("Carml:Consul:BlockingWait must be between 0 and 10 minutes.");
        }

        if (RetryDelay < TimeSpan.Zero || MinimumWatchInterval < TimeSpan.Zero)
        {
            failures.Add("Carml:Consul:RetryDelay and MinimumWatchInterval must not be negative.");
        }

        return failures;
    }

    /// <summary>The options as text, with the token redacted.</summary>
    public override string ToString() =>
        $"Address={Address}, Datacenter={Datacenter ?? "(agent's)"}, Token={(string.IsNullOrEmpty(Token) ? "(none)" : "(set, redacted)")}";
}

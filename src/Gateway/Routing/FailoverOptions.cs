using System.ComponentModel.DataAnnotations;

namespace Carml.Orleans.Gateway.Routing;

/// <summary>
/// How the gateway retries an inference (idempotent) on another replica when the one it picked cannot answer because
/// its silo is gone, it is being reloaded, or it is full. Section <c>Carml:Gateway:Failover</c>.
/// </summary>
public sealed class FailoverOptions
{
    public const string Section = "Carml:Gateway:Failover";

    /// <summary>Tries per request, the first included; 1 turns retries off.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 10;

    /// <summary>
    /// How long after a request arrived the gateway may still start a retry when the request carries no deadline of
    /// its own (gRPC deadline or KServe <c>timeout</c>); with a deadline, the deadline bounds retries.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan MaxRetryWindow { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>First pause before retrying a replica that just failed (doubling per retry, jittered to 50–100 %).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:10")]
    public TimeSpan BaseBackoff { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Longest pause between two tries.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a replica that failed because its silo is gone (or it was unavailable) is skipped when another is healthy.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ReplicaBackoff { get; set; } = TimeSpan.FromSeconds(2);

    internal IEnumerable<string> Problems()
    {
        if (MaxBackoff < BaseBackoff)
        {
            yield return "MaxBackoff must not be shorter than BaseBackoff";
        }
    }
}

using Carml.Orleans.Persistence;
using Carml.Orleans.Registry.Consul;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Silo;

/// <summary>
/// Start-up failures an operator fixes in configuration or infrastructure (Consul unreachable or refusing the token,
/// PostgreSQL unreachable, invalid settings): the silo and gateway processes print them as one line, not a stack trace.
/// </summary>
public static class StartupFailure
{
    /// <summary>The operator-facing message inside <paramref name="e"/>, or null for a fault to report in full.</summary>
    public static string? Describe(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case ConsulException or DatabaseUnavailableException or OptionsValidationException:
                    return e.Message;
                case InvalidOperationException when e.Message.StartsWith("Carml:", StringComparison.Ordinal):
                    return e.Message;
                case AggregateException aggregate when aggregate.InnerExceptions.Select(Describe).FirstOrDefault(m => m is not null) is { } inner:
                    return inner;
            }
        }

        return null;
    }
}

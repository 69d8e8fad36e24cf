using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.KServe;

/// <summary>How long a request may wait in a replica's queue: the tighter of its own timeout and the caller's deadline.</summary>
public static class RequestTimeout
{
    /// <summary>
    /// Microseconds left (0 = no limit) from the request's <c>timeout</c> parameter and the gRPC deadline
    /// (<see cref="DateTime.MaxValue"/> = none). Throws DeadlineExceeded when the deadline has already passed.
    /// </summary>
    public static long Combine(long requestTimeoutMicroseconds, DateTime deadlineUtc, DateTime nowUtc)
    {
        if (deadlineUtc == DateTime.MaxValue)
        {
            return requestTimeoutMicroseconds;
        }

        var left = (deadlineUtc - nowUtc).Ticks / TimeSpan.TicksPerMicrosecond;
        if (left <= 0)
        {
            throw new ModelException(ModelErrorKind.DeadlineExceeded, "The request's deadline passed before it reached the model; it was not run.");
        }

        return requestTimeoutMicroseconds > 0 ? Math.Min(requestTimeoutMicroseconds, left) : left;
    }
}

using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway.KServe;

/// <summary>How long a request may wait in a replica's queue: the tighter of its own timeout and the caller's deadline.</summary>
public static class RequestTimeout
{
    /// <summary>The longest timeout a request may ask for (a day); a gRPC deadline further out counts as this.</summary>
    public const long MaxMicroseconds = 86_400L * 1_000_000;

    /// <summary>The <c>timeout</c> parameter as given, or InvalidArgument when it is negative or longer than a day.</summary>
    public static long Validate(long microseconds, string parameter) =>
        microseconds is >= 0 and <= MaxMicroseconds
            ? microseconds
            : throw ModelException.InvalidArgument($"parameter '{parameter}' must be a whole number of microseconds between 0 and {MaxMicroseconds} (a day).");

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

        left = Math.Min(left, MaxMicroseconds);
        return requestTimeoutMicroseconds > 0 ? Math.Min(requestTimeoutMicroseconds, left) : left;
    }
}

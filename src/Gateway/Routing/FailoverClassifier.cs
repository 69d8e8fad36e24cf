using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Connections;
using Orleans.Runtime.Messaging;

namespace Carml.Orleans.Gateway.Routing;

/// <summary>Why a try on a replica failed, as far as retrying is concerned.</summary>
public enum FailureKind
{
    /// <summary>Retrying cannot help: the caller's mistake (InvalidArgument, NotFound, …), a server fault, a cancellation.</summary>
    Final = 0,

    /// <summary>The replica's silo is gone or unreachable (connection lost, message rejected, no answer in time).</summary>
    SiloGone = 1,

    /// <summary>The replica refused for now: being reloaded, its silo shutting down (ModelException Unavailable).</summary>
    ReplicaUnavailable = 2,

    /// <summary>The replica is full (ModelException ResourceExhausted): worth another replica, never the same one.</summary>
    ReplicaBusy = 3,
}

/// <summary>
/// Decides which failures of an inference call are worth another try. Inference is idempotent, so anything that says
/// "this replica, or its silo, cannot answer now" retries; anything about the request itself never does.
/// </summary>
public static class FailoverClassifier
{
    public static FailureKind Classify(Exception exception) => exception switch
    {
        ModelException { Kind: ModelErrorKind.Unavailable } => FailureKind.ReplicaUnavailable,
        ModelException { Kind: ModelErrorKind.ResourceExhausted } => FailureKind.ReplicaBusy,
        ModelException => FailureKind.Final,
        _ when IsSiloGone(exception) => FailureKind.SiloGone, // before cancellations: ConnectionAbortedException is one
        OperationCanceledException => FailureKind.Final,
        _ => FailureKind.Final,
    };

    /// <summary>
    /// The cluster could not deliver the call or its answer: the target silo died or is unreachable (Orleans rejects the
    /// message, the connection fails or is aborted, or no response arrives within the messaging response timeout).
    /// </summary>
    public static bool IsSiloGone(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SiloUnavailableException or OrleansMessageRejectionException or ConnectionFailedException
                or ConnectionAbortedException or ConnectionResetException or TimeoutException)
            {
                return true;
            }

            if (e is ModelException or OperationCanceledException)
            {
                return false;
            }
        }

        return false;
    }
}

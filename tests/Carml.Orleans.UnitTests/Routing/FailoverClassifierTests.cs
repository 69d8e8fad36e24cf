using System.Reflection;
using Carml.Orleans.Gateway.Routing;
using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Connections;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;

namespace Carml.Orleans.Tests.Routing;

public sealed class FailoverClassifierTests
{
    public static TheoryData<Exception> SiloGoneFailures() =>
    [
        new SiloUnavailableException("silo S127.0.0.1:11111:1 is dead"),
        Rejection("forwarding failed"),
        new ConnectionFailedException("connection refused"),
        new ConnectionAbortedException("connection aborted"),
        new ConnectionResetException("connection reset"),
        new TimeoutException("Response did not arrive on time"),
        new InvalidOperationException("wrapped", new SiloUnavailableException()),
        new AggregateException(new ConnectionFailedException("refused")),
    ];

    /// <summary>Orleans creates these itself (the constructor is not public).</summary>
    internal static OrleansMessageRejectionException Rejection(string message) => (OrleansMessageRejectionException)Activator.CreateInstance(
        typeof(OrleansMessageRejectionException), BindingFlags.NonPublic | BindingFlags.Instance, null, [message], null)!;

    [Theory]
    [MemberData(nameof(SiloGoneFailures))]
    public void Failures_that_say_the_silo_is_gone_are_retried(Exception failure)
    {
        Assert.Equal(FailureKind.SiloGone, FailoverClassifier.Classify(failure));
    }

    [Fact]
    public void An_unavailable_replica_is_retried()
    {
        Assert.Equal(FailureKind.ReplicaUnavailable, FailoverClassifier.Classify(new ModelException(ModelErrorKind.Unavailable, "being reloaded")));
    }

    [Fact]
    public void A_full_replica_is_retried_on_another()
    {
        Assert.Equal(FailureKind.ReplicaBusy, FailoverClassifier.Classify(new ModelException(ModelErrorKind.ResourceExhausted, "queue full")));
    }

    [Theory]
    [InlineData(ModelErrorKind.InvalidArgument)]
    [InlineData(ModelErrorKind.NotFound)]
    [InlineData(ModelErrorKind.PayloadTooLarge)]
    [InlineData(ModelErrorKind.DeadlineExceeded)]
    [InlineData(ModelErrorKind.FailedPrecondition)]
    [InlineData(ModelErrorKind.AlreadyExists)]
    public void Client_mistakes_and_expired_deadlines_are_never_retried(ModelErrorKind kind)
    {
        Assert.Equal(FailureKind.Final, FailoverClassifier.Classify(new ModelException(kind, "no")));
    }

    [Fact]
    public void Cancellations_and_server_faults_are_never_retried()
    {
        Assert.Equal(FailureKind.Final, FailoverClassifier.Classify(new OperationCanceledException()));
        Assert.Equal(FailureKind.Final, FailoverClassifier.Classify(new TaskCanceledException()));
        Assert.Equal(FailureKind.Final, FailoverClassifier.Classify(new InvalidOperationException("bug")));
        Assert.Equal(FailureKind.Final, FailoverClassifier.Classify(new NullReferenceException()));
    }

    [Fact]
    public void A_model_error_wrapping_a_silo_failure_keeps_its_own_meaning()
    {
        var failure = new InvalidOperationException("outer", new ModelException(ModelErrorKind.InvalidArgument, "bad input"));

        Assert.Equal(FailureKind.Final, FailoverClassifier.Classify(failure));
    }
}

using Carml.Orleans.Gateway.Security;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Tests.Security;

public sealed class InferenceLimitsTests
{
    private static InferenceLimits Limits(long elements, int batch) =>
        new(Options.Create(new LimitOptions { MaxTensorElements = elements, MaxBatchSize = batch }));

    [Fact]
    public void Requests_within_the_limits_pass()
    {
        Limits(100, 4).Check([("x", [4, 5]), ("y", [4, 20])]);
    }

    [Fact]
    public void Elements_are_counted_across_all_inputs()
    {
        var failure = Assert.Throws<ModelException>(() => Limits(100, 0).Check([("x", [2, 30]), ("y", [2, 30])]));

        Assert.Equal(ModelErrorKind.InvalidArgument, failure.Kind);
        Assert.Contains("120 tensor elements", failure.Message);
    }

    [Fact]
    public void A_batch_over_the_limit_is_invalid_argument()
    {
        var failure = Assert.Throws<ModelException>(() => Limits(0, 4).Check([("x", [5, 1])]));

        Assert.Contains("batch size 5", failure.Message);
    }

    [Fact]
    public void Shapes_that_overflow_a_long_are_refused_not_wrapped()
    {
        var failure = Assert.Throws<ModelException>(() => Limits(1000, 0).Check([("x", [long.MaxValue / 2, 4, 4])]));

        Assert.Contains("too many tensor elements", failure.Message);
    }

    [Fact]
    public void Zero_turns_the_limits_off()
    {
        Limits(0, 0).Check([("x", [1_000_000, 1_000_000])]);
    }
}

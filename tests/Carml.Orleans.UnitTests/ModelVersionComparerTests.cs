using Carml.Orleans.Core;

namespace Carml.Orleans.Tests;

public sealed class ModelVersionComparerTests
{
    [Fact]
    public void Numeric_versions_sort_by_value_and_words_after_them()
    {
        string[] versions = ["10", "2", "1.10", "1.2", "beta", "alpha", "1"];

        var sorted = versions.Order(ModelVersionComparer.Instance).ToArray();

        Assert.Equal(["1", "1.2", "1.10", "2", "10", "alpha", "beta"], sorted);
    }
}

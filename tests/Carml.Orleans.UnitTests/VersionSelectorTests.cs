using Carml.Orleans.Core;

namespace Carml.Orleans.Tests;

public sealed class VersionSelectorTests
{
    [Theory]
    [InlineData(null, "10")]
    [InlineData("", "10")]
    [InlineData("latest", "10")]
    [InlineData("LATEST", "10")]
    [InlineData("2", "2")]
    [InlineData("7", "7")] // a version not registered stays as asked: the caller answers its NOT_FOUND
    public void Empty_and_latest_select_the_highest_registered_version(string? requested, string expected)
    {
        Assert.Equal(expected, VersionSelector.Select(requested, ["1", "2", "10"]));
    }

    [Fact]
    public void Latest_of_no_versions_is_nothing()
    {
        Assert.Null(VersionSelector.Select("latest", []));
    }

    [Fact]
    public void Latest_is_a_reserved_version_name()
    {
        Assert.Contains("Latest", ManifestValidator.ReservedVersions);
    }
}

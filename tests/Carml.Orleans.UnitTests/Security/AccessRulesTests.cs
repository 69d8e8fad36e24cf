using System.Net;
using Carml.Orleans.Gateway.Security;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Tests.Security;

public sealed class AccessRulesTests
{
    private static readonly CarmlPrincipal Admin = new("root", null, [], Admin: true);
    private static readonly CarmlPrincipal Alice = new("alice", "a", [], Admin: false);
    private static readonly CarmlPrincipal Dave = new("dave", "a", [], Admin: false);
    private static readonly CarmlPrincipal Bob = new("bob", "b", ["ml"], Admin: false);
    private static readonly CarmlPrincipal Carol = new("carol", "c", [], Admin: false);

    private static ModelAccess Owned(ModelVisibility visibility, params string[] groups) =>
        new() { Name = "m", OwnerUser = "alice", OwnerOrganization = "a", Visibility = visibility, Groups = groups };

    public static TheoryData<string, ModelVisibility, bool> ReadMatrix => new()
    {
        { "alice", ModelVisibility.Private, true }, { "dave", ModelVisibility.Private, false }, { "bob", ModelVisibility.Private, false },
        { "alice", ModelVisibility.Group, true }, { "bob", ModelVisibility.Group, true }, { "carol", ModelVisibility.Group, false },
        { "dave", ModelVisibility.Organization, true }, { "bob", ModelVisibility.Organization, false },
        { "carol", ModelVisibility.Public, true }, { "root", ModelVisibility.Private, true },
    };

    [Theory]
    [MemberData(nameof(ReadMatrix))]
    public void Read_follows_owner_visibility_and_admin(string user, ModelVisibility visibility, bool expected)
    {
        var caller = new[] { Admin, Alice, Dave, Bob, Carol }.Single(p => p.User == user);

        Assert.Equal(expected, ModelAuthorizer.CanRead(caller, Owned(visibility, "ml")));
    }

    [Fact]
    public void Write_is_for_the_owner_and_admins_whatever_the_visibility()
    {
        var everyone = Owned(ModelVisibility.Public);

        Assert.True(ModelAuthorizer.CanWrite(Alice, everyone));
        Assert.True(ModelAuthorizer.CanWrite(Admin, everyone));
        Assert.False(ModelAuthorizer.CanWrite(Dave, everyone));
        Assert.False(ModelAuthorizer.CanWrite(Carol, everyone));
    }

    [Fact]
    public void A_name_without_an_owner_is_for_admins_only()
    {
        Assert.True(ModelAuthorizer.CanRead(Admin, null));
        Assert.False(ModelAuthorizer.CanRead(Alice, null));
        Assert.False(ModelAuthorizer.CanWrite(Alice, null));
    }

    [Fact]
    public void Runs_and_uploads_without_an_owner_are_for_admins_only()
    {
        Assert.True(ModelAuthorizer.CanSee(Alice, "alice"));
        Assert.False(ModelAuthorizer.CanSee(Bob, "alice"));
        Assert.False(ModelAuthorizer.CanSee(Alice, null));
        Assert.True(ModelAuthorizer.CanSee(Admin, null));
    }

    [Theory]
    [InlineData("private", ModelVisibility.Private, "")]
    [InlineData("Public", ModelVisibility.Public, "")]
    [InlineData("org", ModelVisibility.Organization, "")]
    [InlineData("group:ml, research", ModelVisibility.Group, "ml,research")]
    public void Visibility_text_parses(string text, ModelVisibility visibility, string groups)
    {
        var parsed = ModelAuthorizer.ParseVisibility(text, []);

        Assert.Equal(visibility, parsed.Visibility);
        Assert.Equal(groups, string.Join(',', parsed.Groups));
    }

    [Theory]
    [InlineData("group")]
    [InlineData("public:ml")]
    [InlineData("everyone")]
    public void Bad_visibility_text_is_invalid_argument(string text)
    {
        var failure = Assert.Throws<ModelException>(() => ModelAuthorizer.ParseVisibility(text, []));

        Assert.Equal(ModelErrorKind.InvalidArgument, failure.Kind);
    }

    [Theory]
    [InlineData("127.0.0.1", false, false, true)]
    [InlineData("::1", false, false, true)]
    [InlineData("0.0.0.0", false, false, false)]
    [InlineData("0.0.0.0", false, true, true)]
    [InlineData("0.0.0.0", true, false, true)]
    [InlineData("10.1.2.3", false, false, false)]
    public void Open_mode_binds_only_to_loopback_without_the_opt_in(string host, bool enabled, bool optIn, bool allowed)
    {
        var options = new AuthOptions { Enabled = enabled, AllowAnonymousOnNetwork = optIn };

        var failure = Record.Exception(() => SecurityHosting.CheckBinding(options, IPAddress.Parse(host)));

        Assert.Equal(allowed, failure is null);
    }

    [Fact]
    public void Open_mode_caller_is_an_anonymous_admin_that_owns_nothing()
    {
        Assert.True(CarmlPrincipal.OpenMode.Admin);
        Assert.True(CarmlPrincipal.OpenMode.IsAnonymous);
        Assert.Null(CarmlPrincipal.OpenMode.Owner);
    }

    [Fact]
    public void Principal_round_trips_through_claims()
    {
        var principal = new CarmlPrincipal("bob", "b", ["ml", "research"], Admin: false, KeyId: "0123456789abcdef");

        var back = CarmlPrincipal.From(principal.ToClaimsPrincipal())!;

        Assert.Equal((principal.User, principal.Organization, principal.Admin, principal.KeyId), (back.User, back.Organization, back.Admin, back.KeyId));
        Assert.Equal(["ml", "research"], back.Groups);
    }
}

using Carml.Orleans.Gateway.Security;
using Microsoft.AspNetCore.Http;

namespace Carml.Orleans.Tests.Security;

public sealed class RequestCredentialTests
{
    private static HttpRequest Request(params (string Name, string Value)[] headers)
    {
        var context = new DefaultHttpContext();
        foreach (var (name, value) in headers)
        {
            context.Request.Headers[name] = value;
        }

        return context.Request;
    }

    [Fact]
    public void An_api_key_header_wins_over_an_authorization_header()
    {
        var credential = CarmlSchemes.Credential(Request(("X-Api-Key", " carml_abc_def "), ("Authorization", "Bearer eyJ.x.y")));

        Assert.Equal(new RequestCredential("carml_abc_def", null, false), credential);
    }

    [Fact]
    public void A_bearer_token_with_the_key_prefix_is_an_api_key_and_any_other_is_a_jwt()
    {
        Assert.Equal(new RequestCredential("carml_abc_def", null, false), CarmlSchemes.Credential(Request(("Authorization", "bearer carml_abc_def"))));
        Assert.Equal(new RequestCredential(null, "eyJ.x.y", false), CarmlSchemes.Credential(Request(("Authorization", "Bearer eyJ.x.y"))));
    }

    [Fact]
    public void Another_scheme_is_present_but_neither_a_key_nor_a_jwt_and_no_header_is_nothing()
    {
        var basic = CarmlSchemes.Credential(Request(("Authorization", "Basic YWRtaW46YWRtaW4=")));
        var none = CarmlSchemes.Credential(Request());

        Assert.Equal(new RequestCredential(null, null, true), basic);
        Assert.True(basic.Present);
        Assert.False(none.Present);
    }

    [Fact]
    public void The_credential_is_read_once_per_request()
    {
        var request = Request(("Authorization", "Bearer eyJ.x.y"));

        var first = CarmlSchemes.Credential(request);
        request.Headers.Authorization = "Bearer other";

        Assert.Same(first, CarmlSchemes.Credential(request));
    }
}

using Carml.Orleans.Gateway.Security;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Tests.Security;

public sealed class ApiKeyFormatTests
{
    [Fact]
    public void Generated_keys_parse_back_to_their_id_and_secret()
    {
        var (id, key) = ApiKeyFormat.Generate();

        Assert.True(ApiKeyFormat.TryParse(key, out var parsedId, out var secret));
        Assert.Equal(id, parsedId);
        Assert.Equal(key, $"carml_{id}_{secret}");
        Assert.True(secret.Length >= 43);
    }

    [Fact]
    public void Two_generated_keys_differ()
    {
        Assert.NotEqual(ApiKeyFormat.Generate().Key, ApiKeyFormat.Generate().Key);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("carml_")]
    [InlineData("carml_0123456789abcdef")]
    [InlineData("carml_0123456789ABCDEF_secret")]
    [InlineData("carml_0123456789abcdefXsecret")]
    [InlineData("other_0123456789abcdef_secret")]
    public void Malformed_keys_do_not_parse(string? key)
    {
        Assert.False(ApiKeyFormat.TryParse(key, out _, out _));
    }

    [Fact]
    public void Only_the_right_secret_verifies_against_the_salted_hash()
    {
        var salt = ApiKeyFormat.NewSalt();
        var record = new ApiKeyRecord { Id = "0123456789abcdef", Salt = salt, Hash = ApiKeyFormat.Hash(salt, "right"), User = "u" };

        Assert.True(ApiKeyFormat.Verify(record, "right"));
        Assert.False(ApiKeyFormat.Verify(record, "wrong"));
        Assert.False(ApiKeyFormat.Verify(record with { Salt = ApiKeyFormat.NewSalt() }, "right"));
    }

    [Fact]
    public void The_stored_hash_never_contains_the_secret()
    {
        var (_, key) = ApiKeyFormat.Generate();
        ApiKeyFormat.TryParse(key, out _, out var secret);

        var hash = ApiKeyFormat.Hash(ApiKeyFormat.NewSalt(), secret!);

        Assert.Equal(32, hash.Length);
        Assert.DoesNotContain(secret!, Convert.ToBase64String(hash), StringComparison.Ordinal);
    }
}

public sealed class KeysCommandTests
{
    [Fact]
    public async Task Keys_new_prints_one_well_formed_key_and_how_to_use_it()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var code = await KeysCommand.RunAsync(["new"], output, error);

        Assert.Equal(0, code);
        Assert.True(ApiKeyFormat.TryParse(output.ToString().Trim(), out _, out _), output.ToString());
        Assert.Contains("Carml__Auth__BootstrapAdminKey", error.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("rotate")]
    [InlineData("create --bogus x")]
    public async Task Unknown_commands_and_options_print_usage_and_exit_2(string commandLine)
    {
        var error = new StringWriter();

        Assert.Equal(2, await KeysCommand.RunAsync(commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries), new StringWriter(), error));
        Assert.Contains("usage", error.ToString());
    }
}

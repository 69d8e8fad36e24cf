using System.Buffers.Text;
using System.Text;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>Opaque page tokens: the position a listing continues after, as base64url text.</summary>
public static class PageTokens
{
    /// <summary>Every token this server issues holds UTF-8 text; bytes that are not are a forged or damaged token.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static string Encode(string position) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(position));

    /// <summary>The position inside a token; InvalidArgument when the token is not one this server issued.</summary>
    public static string Decode(string token)
    {
        try
        {
            return StrictUtf8.GetString(Base64Url.DecodeFromChars(token));
        }
        catch (Exception e) when (e is FormatException or DecoderFallbackException)
        {
            throw Invalid(token);
        }
    }

    public static ModelException Invalid(string token) =>
        ModelException.InvalidArgument($"page_token '{token}' is not a token this server issued.");
}

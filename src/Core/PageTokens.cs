using System.Buffers.Text;
using System.Text;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Core;

/// <summary>Opaque page tokens: the position a listing continues after, as base64url text.</summary>
public static class PageTokens
{
    public static string Encode(string position) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(position));

    /// <summary>The position inside a token; InvalidArgument when the token is not one this server issued.</summary>
    public static string Decode(string token)
    {
        try
        {
            return Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token));
        }
        catch (FormatException)
        {
            throw Invalid(token);
        }
    }

    public static ModelException Invalid(string token) =>
        ModelException.InvalidArgument($"page_token '{token}' is not a token this server issued.");
}

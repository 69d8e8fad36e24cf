using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Security;

/// <summary>
/// The API key format <c>carml_&lt;id&gt;_&lt;secret&gt;</c>: a 16-hex-digit id that names the stored record and a
/// 256-bit random secret (base64url). Only SHA-256(salt ‖ secret) is stored; comparison is constant-time. The secret
/// has full entropy, so a fast hash is enough (no password stretching is needed).
/// </summary>
public static class ApiKeyFormat
{
    public const string Prefix = "carml_";
    public const int IdLength = 16;

    public static (string Id, string Key) Generate()
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(IdLength / 2));
        var secret = Base64Url(RandomNumberGenerator.GetBytes(32));
        return (id, $"{Prefix}{id}_{secret}");
    }

    public static bool TryParse(string? key, [NotNullWhen(true)] out string? id, [NotNullWhen(true)] out string? secret)
    {
        id = secret = null;
        if (key is null || key.Length < Prefix.Length + IdLength + 2 || !key.StartsWith(Prefix, StringComparison.Ordinal)
            || key[Prefix.Length + IdLength] != '_')
        {
            return false;
        }

        var candidate = key.Substring(Prefix.Length, IdLength);
        if (!candidate.All(char.IsAsciiHexDigitLower))
        {
            return false;
        }

        id = candidate;
        secret = key[(Prefix.Length + IdLength + 1)..];
        return true;
    }

    public static byte[] NewSalt() => RandomNumberGenerator.GetBytes(16);

    public static byte[] Hash(byte[] salt, string secret)
    {
        var bytes = Encoding.UTF8.GetBytes(secret);
        var input = new byte[salt.Length + bytes.Length];
        salt.CopyTo(input, 0);
        bytes.CopyTo(input, salt.Length);
        return SHA256.HashData(input);
    }

    public static bool Verify(ApiKeyRecord record, string secret) =>
        CryptographicOperations.FixedTimeEquals(Hash(record.Salt, secret), record.Hash);

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

/// <summary>What an admin asks for when creating a key.</summary>
public sealed record ApiKeyRequest(string? User, string? Organization, IReadOnlyList<string>? Groups, bool Admin = false, string? Name = null, DateTimeOffset? ExpiresAt = null);

/// <summary>A key as the admin API shows it: never its hash, and its secret only in <see cref="CreatedApiKey"/>.</summary>
public sealed record ApiKeyDto(
    string Id, string User, string? Organization, IReadOnlyList<string> Groups, bool Admin, string? Name,
    DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, string? CreatedBy)
{
    public static ApiKeyDto From(ApiKeyRecord r) =>
        new(r.Id, r.User, r.Organization, r.Groups, r.Admin, r.Name, r.CreatedAt, r.ExpiresAt, r.RevokedAt, r.CreatedBy);
}

/// <summary>The answer to creating a key: the full key, shown this once.</summary>
public sealed record CreatedApiKey(string Key, ApiKeyDto ApiKey);

/// <summary>
/// Creates, verifies, lists and revokes API keys held in grains (so standalone and cluster storage both work), with a
/// short cache of verified records so the hot path does not call a grain per request. The bootstrap admin key from
/// configuration is checked in memory and never stored.
/// </summary>
public sealed class ApiKeyStore(IGrainFactory grains, IOptions<AuthOptions> options, TimeProvider time)
{
    private const int CacheCapacity = 100_000;

    private readonly ConcurrentDictionary<string, (ApiKeyRecord? Record, long Expires)> _cache = new(StringComparer.Ordinal);
    private readonly Lazy<ApiKeyRecord?> _bootstrap = new(() => Bootstrap(options.Value, time));

    public async Task<CreatedApiKey> CreateAsync(ApiKeyRequest request, CarmlPrincipal creator)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(request.User))
        {
            problems.Add("user is required.");
        }
        else if (request.User == CarmlPrincipal.AnonymousUser)
        {
            problems.Add($"user '{CarmlPrincipal.AnonymousUser}' is reserved.");
        }

        if (request.ExpiresAt is { } expires && expires <= time.GetUtcNow())
        {
            problems.Add("expires_at must be in the future.");
        }

        if (problems.Count > 0)
        {
            throw new ModelException(ModelErrorKind.InvalidArgument, string.Join(" ", problems), problems);
        }

        var (id, key) = ApiKeyFormat.Generate();
        ApiKeyFormat.TryParse(key, out _, out var secret);
        var salt = ApiKeyFormat.NewSalt();
        var record = new ApiKeyRecord
        {
            Id = id,
            Salt = salt,
            Hash = ApiKeyFormat.Hash(salt, secret!),
            User = request.User!.Trim(),
            Organization = string.IsNullOrWhiteSpace(request.Organization) ? null : request.Organization.Trim(),
            Groups = (request.Groups ?? []).Where(g => !string.IsNullOrWhiteSpace(g)).Select(g => g.Trim()).Distinct(StringComparer.Ordinal).ToArray(),
            Admin = request.Admin,
            Name = request.Name,
            CreatedAt = time.GetUtcNow(),
            ExpiresAt = request.ExpiresAt,
            CreatedBy = creator.User,
        };
        await grains.GetGrain<IApiKeyGrain>(id).CreateAsync(record);
        return new CreatedApiKey(key, ApiKeyDto.From(record));
    }

    public async Task<IReadOnlyList<ApiKeyDto>> ListAsync()
    {
        var ids = await grains.GetGrain<IApiKeyIndexGrain>(IApiKeyIndexGrain.DefaultKey).ListAsync();
        var records = await Task.WhenAll(ids.Select(id => grains.GetGrain<IApiKeyGrain>(id).GetAsync()));
        return records.OfType<ApiKeyRecord>().Select(ApiKeyDto.From).ToArray();
    }

    public async Task<ApiKeyDto> GetAsync(string id) =>
        ApiKeyDto.From((IsId(id) ? await grains.GetGrain<IApiKeyGrain>(id).GetAsync() : null) ?? throw ModelException.NotFound($"There is no API key {id}."));

    public async Task<ApiKeyDto> RevokeAsync(string id)
    {
        var record = (IsId(id) ? await grains.GetGrain<IApiKeyGrain>(id).RevokeAsync(time.GetUtcNow()) : null)
            ?? throw ModelException.NotFound($"There is no API key {id}.");
        _cache.TryRemove(id, out _);
        return ApiKeyDto.From(record);
    }

    /// <summary>The principal a presented key stands for, or a reason it does not stand for anyone.</summary>
    public async Task<(CarmlPrincipal? Principal, string? Failure)> AuthenticateAsync(string presented)
    {
        if (!ApiKeyFormat.TryParse(presented, out var id, out var secret))
        {
            return (null, "The API key is malformed.");
        }

        var record = _bootstrap.Value is { } bootstrap && bootstrap.Id == id ? bootstrap : await FindAsync(id);
        if (record is null || !ApiKeyFormat.Verify(record, secret))
        {
            return (null, "The API key is not valid.");
        }

        if (record.RevokedAt is not null)
        {
            return (null, "The API key was revoked.");
        }

        if (record.ExpiresAt is { } expires && expires <= time.GetUtcNow())
        {
            return (null, "The API key has expired.");
        }

        return (new CarmlPrincipal(record.User, record.Organization, record.Groups, record.Admin, record.Id), null);
    }

    private async Task<ApiKeyRecord?> FindAsync(string id)
    {
        var now = time.GetTimestamp();
        if (_cache.TryGetValue(id, out var cached) && cached.Expires > now)
        {
            return cached.Record;
        }

        var record = await grains.GetGrain<IApiKeyGrain>(id).GetAsync();
        if (_cache.Count >= CacheCapacity)
        {
            _cache.Clear(); // unknown ids are remembered too; a flood of made-up keys must not grow memory without bound
        }

        _cache[id] = (record, now + (long)(options.Value.KeyCacheSeconds * time.TimestampFrequency));
        return record;
    }

    private static bool IsId(string id) => id.Length == ApiKeyFormat.IdLength && id.All(char.IsAsciiHexDigitLower);

    private static ApiKeyRecord? Bootstrap(AuthOptions options, TimeProvider time)
    {
        if (string.IsNullOrEmpty(options.BootstrapAdminKey) || !ApiKeyFormat.TryParse(options.BootstrapAdminKey, out var id, out var secret))
        {
            return null;
        }

        var salt = ApiKeyFormat.NewSalt();
        return new ApiKeyRecord
        {
            Id = id,
            Salt = salt,
            Hash = ApiKeyFormat.Hash(salt, secret),
            User = options.BootstrapAdminUser,
            Admin = true,
            Name = "bootstrap (configuration)",
            CreatedAt = time.GetUtcNow(),
        };
    }
}

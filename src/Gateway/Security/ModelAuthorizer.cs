using System.Collections.Concurrent;
using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Security;

/// <summary>How a caller sets a model's visibility: <c>private</c>, <c>organization</c>, <c>public</c> or <c>group</c> with groups.</summary>
public sealed record ModelAccessRequest(string? Visibility, IReadOnlyList<string>? Groups = null, string? OwnerUser = null, string? OwnerOrganization = null);

/// <summary>A model's owner and visibility as the API shows it.</summary>
public sealed record ModelAccessDto(string Name, string? OwnerUser, string? OwnerOrganization, string Visibility, IReadOnlyList<string> Groups)
{
    public static ModelAccessDto From(string name, ModelAccess? access) => access is null
        ? new ModelAccessDto(name, null, null, "admins-only", [])
        : new ModelAccessDto(name, access.OwnerUser, access.OwnerOrganization, access.Visibility.ToString().ToLowerInvariant(), access.Groups);
}

/// <summary>
/// Per-model decisions, in one place for HTTP and gRPC: read (predict, metadata, ready, list) needs the owner, an admin,
/// or the model's visibility to include the caller; write (register a version, delete, change access) needs the owner
/// or an admin. A caller who may not read a model is told it does not exist (404 / NOT_FOUND), never that it is private;
/// one who may read but not write gets 403 / PERMISSION_DENIED.
/// </summary>
public sealed class ModelAuthorizer(IGrainFactory grains, IOptions<AuthOptions> options, TimeProvider time)
{
    private const int CacheCapacity = 100_000;
    private readonly ConcurrentDictionary<string, (ModelAccess? Access, long Expires)> _cache = new(StringComparer.Ordinal);

    public static bool CanRead(CarmlPrincipal caller, ModelAccess? access) =>
        caller.Admin
        || (access is not null && (access.OwnerUser == caller.User || access.Visibility switch
        {
            ModelVisibility.Public => true,
            ModelVisibility.Organization => caller.Organization is not null && caller.Organization == access.OwnerOrganization,
            ModelVisibility.Group => access.Groups.Intersect(caller.Groups, StringComparer.Ordinal).Any(),
            _ => false,
        }));

    public static bool CanWrite(CarmlPrincipal caller, ModelAccess? access) =>
        caller.Admin || (access is not null && access.OwnerUser == caller.User);

    /// <summary>Runs, evaluations and uploads: their owner and admins see them.</summary>
    public static bool CanSee(CarmlPrincipal caller, string? owner) => caller.Admin || (owner is not null && owner == caller.User);

    public async Task RequireReadAsync(CarmlPrincipal caller, string name, string? version = null)
    {
        // An empty name is the endpoint's to refuse as invalid; there is nothing to hide.
        if (!caller.Admin && !string.IsNullOrEmpty(name) && !CanRead(caller, await GetAsync(name)))
        {
            throw Hidden(name, version);
        }
    }

    public async Task RequireWriteAsync(CarmlPrincipal caller, string name, string? version = null)
    {
        if (caller.Admin || string.IsNullOrEmpty(name))
        {
            return;
        }

        var access = await GetAsync(name);
        if (!CanRead(caller, access))
        {
            throw Hidden(name, version);
        }

        if (!CanWrite(caller, access))
        {
            throw new ModelException(ModelErrorKind.PermissionDenied, $"Only the owner of model '{name}' or an admin may change it.");
        }
    }

    /// <summary>The models of a page the caller may read, in order.</summary>
    public async Task<IReadOnlyList<T>> FilterReadableAsync<T>(CarmlPrincipal caller, IReadOnlyList<T> items, Func<T, string> name)
    {
        if (caller.Admin)
        {
            return items;
        }

        var accesses = await Task.WhenAll(items.Select(item => GetAsync(name(item)).AsTask()));
        return items.Where((_, i) => CanRead(caller, accesses[i])).ToArray();
    }

    /// <summary>
    /// Before registering a version: a new name becomes the caller's (with the visibility asked for, private by
    /// default); an existing name needs write. Dispose the claim; <see cref="RegistrationClaim.Keep"/> it on success.
    /// </summary>
    public async Task<RegistrationClaim> ClaimAsync(CarmlPrincipal caller, string name, string? visibility)
    {
        (ModelVisibility Visibility, IReadOnlyList<string> Groups)? requested = visibility is null ? null : ParseVisibility(visibility, []);
        var existing = await GetAsync(name);
        if (existing is null && !caller.IsAnonymous && !caller.Admin
            && (await grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync(name)).Count > 0)
        {
            // Versions registered while authentication was off have no owner: they stay admin-only until an admin
            // assigns one, and a non-admin cannot take the name over by registering under it.
            await RequireWriteAsync(caller, name);
            return new RegistrationClaim(null);
        }

        if (existing is not null || caller.IsAnonymous)
        {
            // Open mode claims nothing: names registered without authentication stay admin-only once it is turned on.
            await RequireWriteAsync(caller, name);
            return new RegistrationClaim(null);
        }

        var proposed = new ModelAccess
        {
            Name = name,
            OwnerUser = caller.User,
            OwnerOrganization = caller.Organization,
            Visibility = requested?.Visibility ?? ModelVisibility.Private,
            Groups = requested?.Groups ?? [],
            UpdatedAt = time.GetUtcNow(),
        };
        var grain = grains.GetGrain<IModelAccessGrain>(name);
        var (access, created) = await grain.ClaimAsync(proposed);
        Remember(name, access);
        if (!created)
        {
            await RequireWriteAsync(caller, name);
            return new RegistrationClaim(null);
        }

        return new RegistrationClaim(async () =>
        {
            if ((await grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync(name)).Count == 0)
            {
                await grain.ReleaseAsync();
                _cache.TryRemove(name, out _);
            }
        });
    }

    public async Task<ModelAccessDto> GetDtoAsync(CarmlPrincipal caller, string name)
    {
        await RequireReadAsync(caller, name);
        var access = await GetAsync(name);
        if (access is null)
        {
            await EnsureExistsAsync(name);
        }

        return ModelAccessDto.From(name, access);
    }

    public async Task<ModelAccessDto> SetAsync(CarmlPrincipal caller, string name, ModelAccessRequest request)
    {
        await RequireWriteAsync(caller, name);
        var current = await GetAsync(name);
        if (current is null)
        {
            // A name nobody owns must at least have been registered; an owned name stays its owner's with no versions.
            await EnsureExistsAsync(name);
        }

        var parsed = ParseVisibility(request.Visibility ?? throw ModelException.InvalidArgument("visibility is required: private, group, organization or public."), request.Groups ?? []);
        var changesOwner = request.OwnerUser is not null || request.OwnerOrganization is not null;
        if (changesOwner && !caller.Admin)
        {
            throw new ModelException(ModelErrorKind.PermissionDenied, "Only an admin may change a model's owner.");
        }

        var access = new ModelAccess
        {
            Name = name,
            OwnerUser = request.OwnerUser ?? current?.OwnerUser ?? caller.User,
            OwnerOrganization = request.OwnerOrganization ?? current?.OwnerOrganization ?? (current is null ? caller.Organization : null),
            Visibility = parsed.Visibility,
            Groups = parsed.Groups,
            UpdatedAt = time.GetUtcNow(),
        };
        access = await grains.GetGrain<IModelAccessGrain>(name).SetAsync(access);
        Remember(name, access);
        return ModelAccessDto.From(name, access);
    }

    /// <summary>Parses <c>private</c>, <c>organization</c>, <c>public</c>, <c>group</c> (with groups) or <c>group:a,b</c>.</summary>
    public static (ModelVisibility Visibility, IReadOnlyList<string> Groups) ParseVisibility(string text, IReadOnlyList<string> groups)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var kind = (colon < 0 ? text : text[..colon]).Trim().ToLowerInvariant();
        var listed = colon < 0 ? groups : text[(colon + 1)..].Split(',').Concat(groups).ToArray();
        var cleaned = listed.Select(g => g.Trim()).Where(g => g.Length > 0).Distinct(StringComparer.Ordinal).ToArray();
        return kind switch
        {
            "private" or "organization" or "org" or "public" when cleaned.Length > 0 =>
                throw ModelException.InvalidArgument($"visibility '{kind}' takes no groups; use 'group' to share with groups."),
            "private" => (ModelVisibility.Private, []),
            "organization" or "org" => (ModelVisibility.Organization, []),
            "public" => (ModelVisibility.Public, []),
            "group" when cleaned.Length > 0 => (ModelVisibility.Group, cleaned),
            "group" => throw ModelException.InvalidArgument("visibility 'group' needs one or more groups: group:ml,research."),
            _ => throw ModelException.InvalidArgument($"visibility '{text}' is not one of private, group:<groups>, organization, public."),
        };
    }

    private async Task EnsureExistsAsync(string name)
    {
        if ((await grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync(name)).Count == 0)
        {
            throw ModelException.UnknownModel(name, null);
        }
    }

    private async ValueTask<ModelAccess?> GetAsync(string name)
    {
        var now = time.GetTimestamp();
        if (_cache.TryGetValue(name, out var cached) && cached.Expires > now)
        {
            return cached.Access;
        }

        var access = await grains.GetGrain<IModelAccessGrain>(name).GetAsync();
        Remember(name, access);
        return access;
    }

    private void Remember(string name, ModelAccess? access)
    {
        if (_cache.Count >= CacheCapacity)
        {
            _cache.Clear(); // names that do not exist are remembered too; made-up names must not grow memory without bound
        }

        _cache[name] = (access, time.GetTimestamp() + (long)(options.Value.AccessCacheSeconds * time.TimestampFrequency));
    }

    private static ModelException Hidden(string name, string? version) =>
        ModelException.UnknownModel(name, VersionSelector.IsLatest(version) ? null : version);
}

/// <summary>A name claimed for a registration: released again if the registration fails and leaves no version.</summary>
public sealed class RegistrationClaim(Func<Task>? release) : IAsyncDisposable
{
    private Func<Task>? _release = release;

    public void Keep() => _release = null;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _release, null) is { } release)
        {
            await release();
        }
    }
}

namespace Carml.Orleans.Interfaces;

/// <summary>Who may read a model name (every version of it). Writing is always the owner's (and admins').</summary>
[GenerateSerializer]
[Alias("carml.ModelVisibility")]
public enum ModelVisibility
{
    /// <summary>Only the owner and admins.</summary>
    Private = 0,

    /// <summary>The owner, admins and members of the listed groups.</summary>
    Group = 1,

    /// <summary>Everyone in the owner's organization.</summary>
    Organization = 2,

    /// <summary>Every authenticated caller.</summary>
    Public = 3,
}

/// <summary>
/// The owner and visibility of a model name. A name registered before access control was on has no record; only admins
/// may read or write it until an admin gives it an owner.
/// </summary>
[GenerateSerializer, Immutable]
[Alias("carml.ModelAccess")]
public sealed record ModelAccess
{
    [Id(0)] public required string Name { get; init; }
    [Id(1)] public required string OwnerUser { get; init; }
    [Id(2)] public string? OwnerOrganization { get; init; }
    [Id(3)] public ModelVisibility Visibility { get; init; }

    /// <summary>The groups that may read when <see cref="Visibility"/> is <see cref="ModelVisibility.Group"/>.</summary>
    [Id(4)] public IReadOnlyList<string> Groups { get; init; } = [];
    [Id(5)] public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>Ownership and visibility of one model name. Key: the model name. Persistent.</summary>
[Alias("carml.IModelAccessGrain")]
public interface IModelAccessGrain : IGrainWithStringKey
{
    /// <summary>The record, or null when the name has never been claimed.</summary>
    [Alias("Get")]
    Task<ModelAccess?> GetAsync();

    /// <summary>
    /// Records <paramref name="proposed"/> when the name has no owner yet; answers the record in force and whether
    /// this call created it (the first registration of a name makes its registrant the owner).
    /// </summary>
    [Alias("Claim")]
    Task<(ModelAccess Access, bool Created)> ClaimAsync(ModelAccess proposed);

    /// <summary>Replaces the record (owner or admin changing visibility; the caller has checked write access).</summary>
    [Alias("Set")]
    Task<ModelAccess> SetAsync(ModelAccess access);

    /// <summary>Forgets the record (a claim whose registration then failed, with no version left).</summary>
    [Alias("Release")]
    Task ReleaseAsync();
}

/// <summary>An API key as stored: the salted hash of its secret, never the secret, and whom it stands for.</summary>
[GenerateSerializer, Immutable]
[Alias("carml.ApiKeyRecord")]
public sealed record ApiKeyRecord
{
    [Id(0)] public required string Id { get; init; }
    [Id(1)] public required byte[] Salt { get; init; }
    [Id(2)] public required byte[] Hash { get; init; }
    [Id(3)] public required string User { get; init; }
    [Id(4)] public string? Organization { get; init; }
    [Id(5)] public IReadOnlyList<string> Groups { get; init; } = [];
    [Id(6)] public bool Admin { get; init; }
    [Id(7)] public string? Name { get; init; }
    [Id(8)] public DateTimeOffset CreatedAt { get; init; }
    [Id(9)] public DateTimeOffset? ExpiresAt { get; init; }
    [Id(10)] public DateTimeOffset? RevokedAt { get; init; }
    [Id(11)] public string? CreatedBy { get; init; }
}

/// <summary>One API key. Key: the key id (the public part of <c>carml_&lt;id&gt;_&lt;secret&gt;</c>). Persistent.</summary>
[Alias("carml.IApiKeyGrain")]
public interface IApiKeyGrain : IGrainWithStringKey
{
    /// <summary>Stores a new key; AlreadyExists when the id is taken.</summary>
    [Alias("Create")]
    Task CreateAsync(ApiKeyRecord record);

    /// <summary>The record (revoked ones too), or null when there is no such key.</summary>
    [Alias("Get")]
    Task<ApiKeyRecord?> GetAsync();

    /// <summary>Marks the key revoked; answers the record, or null when there is no such key.</summary>
    [Alias("Revoke")]
    Task<ApiKeyRecord?> RevokeAsync(DateTimeOffset at);
}

/// <summary>The ids of every API key, so listing never scans grains. Key: <c>default</c>.</summary>
[Alias("carml.IApiKeyIndexGrain")]
public interface IApiKeyIndexGrain : IGrainWithStringKey
{
    public const string DefaultKey = "default";

    [Alias("Add")]
    Task AddAsync(string id);

    [Alias("List")]
    Task<IReadOnlyList<string>> ListAsync();
}

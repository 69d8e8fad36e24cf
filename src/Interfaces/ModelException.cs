namespace Carml.Orleans.Interfaces;

/// <summary>Why a model operation was refused; the gateway maps each kind to an HTTP status and a gRPC code.</summary>
[GenerateSerializer]
[Alias("carml.ModelErrorKind")]
public enum ModelErrorKind
{
    /// <summary>The caller sent something wrong (HTTP 400, gRPC INVALID_ARGUMENT).</summary>
    InvalidArgument = 1,

    /// <summary>No such model or version (HTTP 404, gRPC NOT_FOUND).</summary>
    NotFound = 2,

    /// <summary>The name and version are taken by a different model (HTTP 409, gRPC ALREADY_EXISTS).</summary>
    AlreadyExists = 3,

    /// <summary>The request is bigger than allowed (HTTP 413, gRPC RESOURCE_EXHAUSTED).</summary>
    PayloadTooLarge = 4,

    /// <summary>The server is out of capacity for now (HTTP 429, gRPC RESOURCE_EXHAUSTED).</summary>
    ResourceExhausted = 5,

    /// <summary>The model exists but cannot serve now: loading or failed (HTTP 503, gRPC UNAVAILABLE).</summary>
    Unavailable = 6,

    /// <summary>The request's deadline passed before it could be served (HTTP 504, gRPC DEADLINE_EXCEEDED).</summary>
    DeadlineExceeded = 7,

    /// <summary>The request is well formed but the target is not in a state to serve it (HTTP 400, gRPC FAILED_PRECONDITION).</summary>
    FailedPrecondition = 8,

    /// <summary>The request conflicts with the resource's state, e.g. cancelling a finished evaluation (HTTP 409, gRPC FAILED_PRECONDITION).</summary>
    Conflict = 9,

    /// <summary>The caller did not prove who it is: no, a malformed, an unknown or an expired credential (HTTP 401, gRPC UNAUTHENTICATED).</summary>
    Unauthenticated = 10,

    /// <summary>The caller is known but may not do this (HTTP 403, gRPC PERMISSION_DENIED).</summary>
    PermissionDenied = 11,
}

/// <summary>A refused model operation, with every problem found, not just the first.</summary>
[GenerateSerializer]
[Alias("carml.ModelException")]
public sealed class ModelException : Exception
{
    public ModelException()
    {
    }

    public ModelException(ModelErrorKind kind, string message, IReadOnlyList<string>? problems = null)
        : base(message)
    {
        Kind = kind;
        Problems = problems?.ToArray() ?? [];
    }

    [Id(0)] public ModelErrorKind Kind { get; private set; }

    [Id(1)] public string[] Problems { get; private set; } = [];

    public static ModelException InvalidArgument(string message) => new(ModelErrorKind.InvalidArgument, message);

    public static ModelException NotFound(string message) => new(ModelErrorKind.NotFound, message);

    public static ModelException UnknownModel(string name, string? version) => NotFound(version is null
        ? $"Model '{name}' is not registered."
        : $"Model '{name}' has no version '{version}'.");
}

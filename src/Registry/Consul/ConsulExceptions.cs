using System.Net;

namespace Carml.Orleans.Registry.Consul;

/// <summary>Consul answered with an error that retrying will not fix.</summary>
public class ConsulException(string message, HttpStatusCode? statusCode = null, Exception? inner = null) : Exception(message, inner)
{
    public HttpStatusCode? StatusCode { get; } = statusCode;
}

/// <summary>Consul refused the ACL token (403): it is missing, unknown, or lacks a permission. Never retried.</summary>
public sealed class ConsulAclException(string message) : ConsulException(message, HttpStatusCode.Forbidden);

/// <summary>Consul could not be reached, or kept failing transiently, after every retry.</summary>
public sealed class ConsulUnavailableException(string message, Exception? inner = null) : ConsulException(message, null, inner);

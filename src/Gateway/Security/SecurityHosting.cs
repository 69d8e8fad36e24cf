using System.Net;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Security;

/// <summary>The gateway's security, wired with one call on the builder and one on the app.</summary>
public static class SecurityHosting
{
    /// <summary>
    /// Binds <c>Carml:Auth</c> and <c>Carml:Limits</c>, refuses to run open on a network address without the explicit
    /// opt-in, and registers authentication (API keys; JWT when configured), authorization and limits.
    /// </summary>
    public static WebApplicationBuilder AddCarmlSecurity(this WebApplicationBuilder builder, IPAddress host)
    {
        var auth = builder.Configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        CheckBinding(auth, host);

        var services = builder.Services;
        services.AddOptions<AuthOptions>()
            .Bind(builder.Configuration.GetSection(AuthOptions.Section))
            .ValidateDataAnnotations()
            .Validate(o => !Problems(o).Any(), "Carml:Auth is invalid.")
            .PostConfigure(o =>
            {
                // The dashboard reads any grain's state (API key hashes included): admins only, wherever it is mapped.
                var dashboard = "/" + Silo.Telemetry.DashboardSettings.Read(builder.Configuration).Path.Trim('/');
                if (!o.AdminPaths.Contains(dashboard, StringComparer.OrdinalIgnoreCase))
                {
                    o.AdminPaths.Add(dashboard);
                }
            })
            .ValidateOnStart();
        services.AddOptions<LimitOptions>()
            .Bind(builder.Configuration.GetSection(LimitOptions.Section))
            .ValidateDataAnnotations()
            .Validate(o => o.Window > TimeSpan.Zero, "Carml:Limits:Window must be positive.")
            .ValidateOnStart();
        if (Problems(auth).FirstOrDefault() is { } problem)
        {
            throw new InvalidOperationException(problem);
        }

        services.AddSingleton<ApiKeyStore>();
        services.AddSingleton<JwtPrincipalCache>();
        services.AddSingleton<ModelAuthorizer>();
        services.AddSingleton<InferenceLimits>();
        services.AddSingleton<CallerRateLimiter>();
        services.AddSingleton<GrpcAccessInterceptor>();
        services.Configure<GrpcServiceOptions>(grpc => grpc.Interceptors.Add<GrpcAccessInterceptor>());
        services.AddHostedService<SecurityStartupReport>();
        if (auth.Enabled)
        {
            var authentication = services.AddAuthentication()
                .AddPolicyScheme(CarmlSchemes.Carml, "API key or JWT", scheme => scheme.ForwardDefaultSelector = context =>
                    auth.Jwt.Configured && CarmlSchemes.Credential(context.Request) is { ApiKey: null, Jwt: not null } or { OtherScheme: true } ? CarmlSchemes.Jwt : CarmlSchemes.ApiKey)
                .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(CarmlSchemes.ApiKey, _ => { });
            if (auth.Jwt.Configured)
            {
                authentication.AddJwtBearer(CarmlSchemes.Jwt, _ => { });
                services.AddSingleton<IConfigureOptions<JwtBearerOptions>, JwtBearerSetup>();
            }
        }

        return builder;
    }

    /// <summary>Authenticates and limits every request after routing, and maps <c>/api/keys</c> and model access.</summary>
    public static WebApplication UseCarmlSecurity(this WebApplication app)
    {
        app.UseMiddleware<SecurityMiddleware>();
        app.MapSecurity();
        return app;
    }

    /// <summary>Open mode (authentication off) is for loopback; a network address needs the explicit opt-in.</summary>
    public static void CheckBinding(AuthOptions auth, IPAddress host)
    {
        if (!auth.Enabled && !IPAddress.IsLoopback(host) && !auth.AllowAnonymousOnNetwork)
        {
            throw new InvalidOperationException(
                $"Carml:Auth:Enabled is false but Carml:Gateway:Host {host} is not loopback: turn authentication on (Carml:Auth:Enabled=true), bind to 127.0.0.1, or accept an open gateway with Carml:Auth:AllowAnonymousOnNetwork=true.");
        }
    }

    public static IEnumerable<string> Problems(AuthOptions auth)
    {
        if (string.IsNullOrEmpty(auth.BootstrapAdminKey))
        {
        }
        else if (!ApiKeyFormat.TryParse(auth.BootstrapAdminKey, out _, out var secret))
        {
            yield return "Carml:Auth:BootstrapAdminKey is not a key as 'keys new' makes them (carml_<16 hex digits>_<secret>).";
        }
        else if (secret.Length < 32)
        {
            yield return "Carml:Auth:BootstrapAdminKey has a secret shorter than 32 characters; make one with 'keys new'.";
        }

        foreach (var jwt in JwtBearerSetup.Problems(auth.Jwt))
        {
            yield return jwt;
        }
    }
}

/// <summary>Says at start how callers are authenticated, and warns when the gateway is open on a network address.</summary>
public sealed partial class SecurityStartupReport(IOptions<AuthOptions> options, GatewayEndpoints endpoints, ILogger<SecurityStartupReport> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var auth = options.Value;
        if (!auth.Enabled)
        {
            if (!IPAddress.TryParse(endpoints.Http.Host.Trim('[', ']'), out var address) || !IPAddress.IsLoopback(address))
            {
                LogOpenOnNetwork(logger, endpoints.Http.Host);
            }
            else
            {
                LogOpenOnLoopback(logger);
            }
        }
        else
        {
            LogEnabled(logger, auth.Jwt.Configured, auth.Jwt.Issuer ?? "-", !string.IsNullOrEmpty(auth.BootstrapAdminKey));
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 7402, Level = LogLevel.Warning,
        Message = "Authentication is OFF and the gateway listens on {Host}, a network address (Carml:Auth:AllowAnonymousOnNetwork=true): anyone who reaches it is an admin")]
    private static partial void LogOpenOnNetwork(ILogger logger, string host);

    [LoggerMessage(EventId = 7403, Level = LogLevel.Information, Message = "Authentication is off (open mode on loopback); set Carml:Auth:Enabled=true before exposing the gateway")]
    private static partial void LogOpenOnLoopback(ILogger logger);

    [LoggerMessage(EventId = 7404, Level = LogLevel.Information, Message = "Authentication is on: API keys; JWT {JwtConfigured} (issuer {Issuer}); bootstrap admin key configured: {Bootstrap}")]
    private static partial void LogEnabled(ILogger logger, bool jwtConfigured, string issuer, bool bootstrap);
}

namespace Carml.Orleans.Gateway.Routing;

public static class RoutingServices
{
    /// <summary>Registers the model router, its failover settings (<c>Carml:Gateway:Failover</c>, validated on start) and counters.</summary>
    public static IServiceCollection AddModelRouting(this IServiceCollection services)
    {
        services.AddOptions<FailoverOptions>()
            .BindConfiguration(FailoverOptions.Section)
            .ValidateDataAnnotations()
            .Validate(o => !o.Problems().Any(), "Carml:Gateway:Failover is invalid: MaxBackoff must not be shorter than BaseBackoff.")
            .ValidateOnStart();
        services.AddSingleton<FailoverCounters>();
        services.AddSingleton<ModelRouter>();
        return services;
    }
}

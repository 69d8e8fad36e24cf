using Carml.Orleans.Core;
using Carml.Orleans.Grains.Placement;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Grains;

public static class CarmlGrainServices
{
    /// <summary>Registers what the model grains need on a silo: the content store and runtime settings.</summary>
    public static IServiceCollection AddCarmlGrainServices(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<OnnxRuntimeOptions>()
            .Bind(configuration.GetSection(OnnxRuntimeOptions.Section))
            .Validate(o => o.IntraOpThreads >= 0 && o.InterOpThreads >= 0, "Carml:OnnxRuntime thread counts must be 0 (runtime default) or positive.")
            .Validate(o => o.MaxConcurrentRuns >= 0, "Carml:OnnxRuntime:MaxConcurrentRuns must be 0 (one per core) or positive.")
            .ValidateOnStart();
        services.TryAddContentStore(configuration);
        services.TryAddSingleton<LocalReplicaDirectory>();
        services.TryAddUploadStore(configuration);
        services.TryAddKeyedSingleton(UploadOptions.ClockKey, TimeProvider.System);
        services.TryAddKeyedSingleton(PredictorOptions.ClockKey, TimeProvider.System);
        services.AddOptions<PredictorOptions>()
            .Bind(configuration.GetSection(PredictorOptions.Section))
            .Validate(o => !o.Problems().Any(), "Carml:Predictors is invalid: IdleTimeout must be positive, limits at least 1.")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<Agents.AgentOptions>()
            .Bind(configuration.GetSection(Agents.AgentOptions.Section))
            .Validate(o => o.HeartbeatInterval > TimeSpan.Zero, "Carml:Agent:HeartbeatInterval must be positive.")
            .ValidateOnStart();
        services.TryAddSingleton<Agents.HardwareDetector>();
        services.AddHostedService<Agents.AgentPublisher>();
        services.AddCarmlPlacement(configuration);
        return services;
    }

    /// <summary>Registers the partial-upload store once, bound to <c>Carml:Uploads</c>.</summary>
    public static IServiceCollection TryAddUploadStore(this IServiceCollection services, IConfiguration configuration)
    {
        if (services.Any(d => d.ServiceType == typeof(UploadFileStore)))
        {
            return services;
        }

        services.AddOptions<UploadOptions>()
            .Bind(configuration.GetSection(UploadOptions.Section))
            .Validate(o => !string.IsNullOrWhiteSpace(o.Root), "Carml:Uploads:Root must name a directory.")
            .Validate(o => o.MaxSize > 0, "Carml:Uploads:MaxSize must be positive.")
            .Validate(o => o.Expiration > TimeSpan.Zero && o.PurgeInterval > TimeSpan.Zero && o.LeaseTimeout > TimeSpan.Zero,
                "Carml:Uploads:Expiration, PurgeInterval and LeaseTimeout must be positive.")
            .ValidateOnStart();
        services.AddSingleton(sp => new UploadFileStore(sp.GetRequiredService<IOptions<UploadOptions>>()));
        return services;
    }

    /// <summary>Registers the content store once, bound to <c>Carml:ContentStore</c>.</summary>
    public static IServiceCollection TryAddContentStore(this IServiceCollection services, IConfiguration configuration)
    {
        if (services.Any(d => d.ServiceType == typeof(ContentStore)))
        {
            return services;
        }

        services.AddOptions<ContentStoreOptions>()
            .Bind(configuration.GetSection(ContentStoreOptions.Section))
            .Validate(o => !string.IsNullOrWhiteSpace(o.Root), "Carml:ContentStore:Root must name a directory.")
            .ValidateOnStart();
        services.AddSingleton(sp => new ContentStore(sp.GetRequiredService<IOptions<ContentStoreOptions>>()));
        return services;
    }
}

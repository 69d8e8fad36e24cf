using Carml.Orleans.Grains.Agents;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Carml.Orleans.Grains.Placement;

/// <summary>How model replicas are placed. Section <c>Carml:Placement</c>.</summary>
public sealed class PlacementOptions
{
    public const string Section = "Carml:Placement";

    /// <summary>How often a model with unschedulable replicas checks whether an eligible silo has joined.</summary>
    public TimeSpan UnschedulableRetryInterval { get; set; } = TimeSpan.FromSeconds(10);
}

public static class PlacementHosting
{
    /// <summary>
    /// Advertises this silo's capabilities through Orleans silo metadata: <c>carml.accelerator</c> (gpu|cpu),
    /// <c>carml.gpu.count</c>, <c>carml.gpu.memory_bytes</c> (the largest GPU) and <c>carml.gpu.cuda</c>, from the
    /// hardware detector (nvidia-smi, or the <c>Carml:Agent:Gpus</c> override). Entries under <c>Orleans:Metadata</c>
    /// are advertised too.
    /// </summary>
    public static ISiloBuilder UseCarmlSiloMetadata(this ISiloBuilder silo, IConfiguration configuration)
    {
        var agent = configuration.GetSection(AgentOptions.Section).Get<AgentOptions>() ?? new AgentOptions();
        var detector = new HardwareDetector(Options.Create(agent));

        // The metadata is fixed when the silo is built; the rest of the silo (agent reports, placement, the replicas'
        // provider choice) uses this same detector, so nvidia-smi runs once per silo.
        silo.Services.Replace(ServiceDescriptor.Singleton(detector));
        var metadata = configuration.GetSection("Orleans:Metadata").Get<Dictionary<string, string>>() ?? [];
        foreach (var (key, value) in SiloCapabilities.From("local", detector.Gpus).ToMetadata())
        {
            metadata[key] = value;
        }

        return silo.UseSiloMetadata(metadata);
    }

    /// <summary>Registers the GPU-aware placement director, the silo's capability and load views, and the model memory budget.</summary>
    public static IServiceCollection AddCarmlPlacement(this IServiceCollection services, IConfiguration configuration)
    {
        if (services.Any(d => d.ServiceType == typeof(SiloLoadView)))
        {
            return services;
        }

        services.AddOptions<PlacementOptions>()
            .Bind(configuration.GetSection(PlacementOptions.Section))
            .Validate(o => o.UnschedulableRetryInterval > TimeSpan.Zero, "Carml:Placement:UnschedulableRetryInterval must be positive.")
            .ValidateOnStart();
        services.AddOptions<ModelMemoryOptions>()
            .Bind(configuration.GetSection(ModelMemoryOptions.Section))
            .Validate(o => o.ModelMemoryBudgetBytes >= 0, "Carml:Silo:ModelMemoryBudgetBytes must be 0 (unlimited) or positive.")
            .Validate(o => o.ModelMemoryFactor > 0, "Carml:Silo:ModelMemoryFactor must be positive.")
            .ValidateOnStart();
        services.AddSingleton<SiloLoadView>();
        services.AddSingleton<SiloCapabilityView>();
        services.TryAddSingleton(sp => new ModelMemoryBudget(
            sp.GetRequiredService<IOptions<ModelMemoryOptions>>().Value.ModelMemoryBudgetBytes, sp.GetRequiredService<TimeProvider>()));
        services.AddPlacementDirector<GpuAwarePlacement, GpuAwarePlacementDirector>();
        return services;
    }
}

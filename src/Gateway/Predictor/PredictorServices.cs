using Carml.Orleans.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Gateway.Predictor;

public static class PredictorServices
{
    /// <summary>Registers the predictor API's services and validates <c>Carml:Predictors</c> on start.</summary>
    public static IServiceCollection AddPredictorApi(this IServiceCollection services)
    {
        services.AddOptions<PredictorOptions>()
            .BindConfiguration(PredictorOptions.Section)
            .Validate(o => !o.Problems().Any(), "Carml:Predictors is invalid: IdleTimeout and Urls:Timeout must be positive, limits at least 1.")
            .ValidateOnStart();
        services.TryAddKeyedSingleton(PredictorOptions.ClockKey, TimeProvider.System);
        services.AddSingleton<ImageFetcher>();
        services.AddSingleton<ModelLabels>();
        services.AddSingleton<PredictorService>();
        return services;
    }
}

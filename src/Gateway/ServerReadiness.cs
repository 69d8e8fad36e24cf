using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Gateway;

/// <summary>
/// Whether this gateway can serve: start-up work (loading registered models) has finished and the cluster answers.
/// </summary>
public sealed class ServerReadiness(IGrainFactory grains)
{
    private volatile bool _started;

    public void MarkStarted() => _started = true;

    public bool Started => _started;

    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken)
    {
        if (!_started)
        {
            return false;
        }

        var cluster = await HealthProbe.RunAsync(
            () => grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.DefaultKey).GetVersionsAsync(string.Empty), cancellationToken);
        return cluster.Status == "ok";
    }
}

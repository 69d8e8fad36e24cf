using Carml.Orleans.Silo;
using Microsoft.Extensions.Hosting;

// A silo on its own. Standalone mode (default): localhost clustering and the embedded store, as the gateway hosts it
// in-process. Cluster mode (Carml:Mode=cluster): membership and the service catalog in Consul.
var builder = Host.CreateApplicationBuilder(args);
CarmlMode mode;
try
{
    mode = CarmlModeConfiguration.Read(builder.Configuration);
}
catch (InvalidOperationException e)
{
    await Console.Error.WriteLineAsync($"carml silo: {e.Message}");
    return 2;
}

try
{
    Carml.Orleans.Silo.Telemetry.CarmlOpenTelemetry.AddCarmlOpenTelemetry(builder.Services, builder.Configuration, "silo");
    builder.UseOrleans(silo =>
    {
        if (mode == CarmlMode.Cluster)
        {
            silo.UseCarmlCluster(builder.Configuration);
        }
        else
        {
            silo.UseCarmlStandalone(builder.Configuration);
        }
    });
    await builder.Build().RunAsync();
    return 0;
}
catch (Exception e) when (StartupFailure.Describe(e) is { } message)
{
    // Consul or PostgreSQL unreachable at start, a refused token, an invalid setting: one clear line.
    await Console.Error.WriteLineAsync($"carml silo: {message}");
    return 2;
}

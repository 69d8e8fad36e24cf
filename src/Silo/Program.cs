using Carml.Orleans.Registry.Consul;
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

try
{
    await builder.Build().RunAsync();
    return 0;
}
catch (Exception e) when (FindConsulError(e) is { } consul)
{
    // Consul unreachable at start, or a refused token: one clear line instead of a stack trace.
    await Console.Error.WriteLineAsync($"carml silo: {consul.Message}");
    return 2;
}

static ConsulException? FindConsulError(Exception? e)
{
    for (; e is not null; e = e.InnerException)
    {
        if (e is ConsulException consul)
        {
            return consul;
        }

        if (e is AggregateException aggregate && aggregate.InnerExceptions.Select(FindConsulError).FirstOrDefault(c => c is not null) is { } inner)
        {
            return inner;
        }
    }

    return null;
}

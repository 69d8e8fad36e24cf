using Carml.Orleans.Gateway;
using Carml.Orleans.Silo;

if (args is ["keys", ..])
{
    return await Carml.Orleans.Gateway.Security.KeysCommand.RunAsync(args[1..], Console.Out, Console.Error);
}

try
{
    var app = GatewayHost.Build(args);
    await app.RunAsync();
    return 0;
}
catch (Exception e) when (StartupFailure.Describe(e) is { } message)
{
    // An invalid setting, Consul or PostgreSQL unreachable at start: one clear line instead of a stack trace.
    await Console.Error.WriteLineAsync($"carml gateway: {message}");
    return 2;
}

/// <summary>Entry point; tests start the gateway through <see cref="GatewayHost"/>.</summary>
public partial class Program;

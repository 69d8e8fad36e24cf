using Carml.Orleans.Gateway;

var app = GatewayHost.Build(args);
await app.RunAsync();

/// <summary>Entry point; tests start the gateway through <see cref="GatewayHost"/>.</summary>
public partial class Program;

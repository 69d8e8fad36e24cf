using Carml.Orleans.Silo;
using Microsoft.Extensions.Hosting;

// A silo on its own, with localhost clustering and the embedded store: the agent process. The gateway's standalone
// mode hosts the same silo in-process; cluster mode (Consul membership) arrives with the Consul work.
var builder = Host.CreateApplicationBuilder(args);
builder.UseOrleans(silo => silo.UseCarmlStandalone(builder.Configuration));
await builder.Build().RunAsync();

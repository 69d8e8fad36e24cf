using System.Globalization;
using Carml.Orleans.ConsulEmulator;

// The Consul API emulator as a process, for multi-process tests. Test support, not a product feature.
//   dotnet Carml.Orleans.ConsulEmulator.dll [--port N] [--acl-token TOKEN]
// Prints "consul-emulator listening on http://127.0.0.1:PORT/" once it accepts requests; stops on SIGTERM or Ctrl+C.
var options = new ConsulEmulatorOptions();
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--port" when i + 1 < args.Length:
            options.Port = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--acl-token" when i + 1 < args.Length:
            options.AclToken = args[++i];
            break;
        default:
            await Console.Error.WriteLineAsync($"Unknown argument '{args[i]}'. Usage: Carml.Orleans.ConsulEmulator [--port N] [--acl-token TOKEN]");
            return 2;
    }
}

await using var server = await ConsulEmulatorServer.StartAsync(options);
Console.WriteLine($"consul-emulator listening on {server.Address}");
Console.Out.Flush();

var stopped = new TaskCompletionSource();
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stopped.TrySetResult();
});
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stopped.TrySetResult();
};
await stopped.Task;
return 0;

using System.Net;
using System.Net.Sockets;

namespace Carml.Orleans.Silo;

/// <summary>Resolves a configured port of 0 to a port that is free on the loopback interface right now.</summary>
public static class FreePort
{
    public static int Resolve(int configured) => configured != 0 ? configured : Next();

    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}

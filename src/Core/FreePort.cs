using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Carml.Orleans.Core;

/// <summary>
/// Chooses listening ports at run time (a configured port of 0). Ports come from outside the kernel's ephemeral range:
/// a port the kernel hands out for "port 0" can be handed out again as the local port of an outgoing connection — a
/// gateway connecting to Consul or a silo to its peers — between choosing it and binding it, and the bind then fails.
/// </summary>
public static class FreePort
{
    private const int Floor = 10_000;
    private const int Attempts = 200;
    private static readonly ConcurrentDictionary<int, byte> HandedOut = new();

    public static int Resolve(int configured) => configured != 0 ? configured : Next();

    /// <summary>A port nothing listens on now, not in the ephemeral range, and not handed out before by this process.</summary>
    public static int Next()
    {
        var ranges = OutsideEphemeralRange(EphemeralRange());
        var size = ranges.Sum(r => r.Count);
        for (var attempt = 0; size > 0 && attempt < Attempts; attempt++)
        {
            var pick = Random.Shared.Next(size);
            var port = 0;
            foreach (var (first, count) in ranges)
            {
                if (pick < count)
                {
                    port = first + pick;
                    break;
                }

                pick -= count;
            }

            if (IsFree(port) && HandedOut.TryAdd(port, 0))
            {
                return port;
            }
        }

        // A host whose ephemeral range covers nearly everything: let the kernel choose.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var chosen = ((IPEndPoint)listener.LocalEndpoint).Port;
        HandedOut.TryAdd(chosen, 0);
        return chosen;
    }

    /// <summary>The ports between <see cref="Floor"/> and 65535 that are below or above the ephemeral range.</summary>
    public static IReadOnlyList<(int First, int Count)> OutsideEphemeralRange((int Low, int High) ephemeral)
    {
        var ranges = new List<(int First, int Count)>();
        if (ephemeral.Low > Floor)
        {
            ranges.Add((Floor, ephemeral.Low - Floor));
        }

        var above = Math.Max(ephemeral.High + 1, Floor);
        if (above <= IPEndPoint.MaxPort)
        {
            ranges.Add((above, IPEndPoint.MaxPort - above + 1));
        }

        return ranges;
    }

    /// <summary>Linux publishes its range; elsewhere the IANA dynamic range is the usual one.</summary>
    private static (int Low, int High) EphemeralRange()
    {
        const string linux = "/proc/sys/net/ipv4/ip_local_port_range";
        try
        {
            if (File.Exists(linux))
            {
                var parts = File.ReadAllText(linux).Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 2 && int.TryParse(parts[0], out var low) && int.TryParse(parts[1], out var high) && low <= high)
                {
                    return (low, high);
                }
            }
        }
        catch (IOException)
        {
            // Unreadable: fall back to the usual range.
        }
        catch (UnauthorizedAccessException)
        {
            // As above.
        }

        return (49152, IPEndPoint.MaxPort);
    }

    /// <summary>Binding the wildcard address fails when anything listens on the port on any local address.</summary>
    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Any, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

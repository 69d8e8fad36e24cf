using System.Net;
using System.Net.Sockets;
using Carml.Orleans.Core;

namespace Carml.Orleans.Tests;

public sealed class FreePortTests
{
    [Fact]
    public void Ports_are_chosen_below_and_above_the_linux_default_ephemeral_range()
    {
        Assert.Equal([(10_000, 22_768), (61_000, 4_536)], FreePort.OutsideEphemeralRange((32_768, 60_999)));
    }

    [Fact]
    public void A_range_reaching_the_top_leaves_only_the_ports_below_it()
    {
        Assert.Equal([(10_000, 39_152)], FreePort.OutsideEphemeralRange((49_152, 65_535)));
    }

    [Fact]
    public void A_range_covering_everything_leaves_no_candidates()
    {
        Assert.Empty(FreePort.OutsideEphemeralRange((1_024, 65_535)));
    }

    [Fact]
    public void Chosen_ports_are_distinct_and_bindable_on_loopback()
    {
        var ports = Enumerable.Range(0, 20).Select(_ => FreePort.Next()).ToList();

        Assert.Equal(ports.Count, ports.Distinct().Count());
        foreach (var port in ports)
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            Assert.Equal(port, ((IPEndPoint)listener.LocalEndpoint).Port);
        }
    }

    [Fact]
    public void A_configured_port_is_kept()
    {
        Assert.Equal(8000, FreePort.Resolve(8000));
    }
}

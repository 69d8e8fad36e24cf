using System.ComponentModel.DataAnnotations;

namespace Carml.Orleans.Silo;

/// <summary>Where a silo keeps its data and how it joins the cluster. Section <c>Carml:Silo</c>.</summary>
public sealed class CarmlSiloOptions
{
    public const string Section = "Carml:Silo";

    /// <summary>Directory for the embedded database and the model files; relative to the working directory.</summary>
    [Required]
    public string DataDirectory { get; set; } = ".data";

    [Required]
    public string ClusterId { get; set; } = "carml";

    [Required]
    public string ServiceId { get; set; } = "carml";

    /// <summary>Silo-to-silo port; 0 picks a free port at start.</summary>
    [Range(0, 65535)]
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port Orleans clients (gateways in cluster mode) connect to; 0 picks a free port at start.</summary>
    [Range(0, 65535)]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Cluster mode: the address other silos and the gateways use to reach this silo (this host's own IP).</summary>
    [Required]
    public string AdvertisedAddress { get; set; } = "127.0.0.1";

    /// <summary>Cluster mode: listen on every interface instead of only <see cref="AdvertisedAddress"/> (e.g. in a container).</summary>
    public bool ListenOnAnyHostAddress { get; set; }
}

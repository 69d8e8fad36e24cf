using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;

namespace Carml.Orleans.Silo;

/// <summary>
/// How fast a cluster declares a silo dead (so the grains it hosted, model replicas included, re-activate elsewhere):
/// Orleans' <see cref="ClusterMembershipOptions"/> bound from <c>Carml:Membership</c> (e.g. <c>ProbeTimeout</c>,
/// <c>NumMissedProbesLimit</c>, <c>NumVotesForDeathDeclaration</c>, <c>TableRefreshTimeout</c>), and the silos' grain-call
/// <c>ResponseTimeout</c> from <c>Carml:Messaging</c>. Unset values keep Orleans' production defaults; Orleans validates them.
/// </summary>
public static class FailureDetection
{
    public const string MembershipSection = "Carml:Membership";
    public const string MessagingSection = "Carml:Messaging";

    public static ISiloBuilder ConfigureFailureDetection(this ISiloBuilder silo, IConfiguration configuration)
    {
        silo.Services.AddOptions<ClusterMembershipOptions>().Bind(configuration.GetSection(MembershipSection));
        silo.Services.AddOptions<SiloMessagingOptions>().Bind(configuration.GetSection(MessagingSection));
        return silo;
    }
}

using Carml.Orleans.Interfaces;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Carml.Orleans.Gateway.Management;

/// <summary>An agent as the management API shows it: its report plus whether its heartbeat is current.</summary>
public sealed record AgentDto(AgentInfo Agent, string Accelerator, double HeartbeatAgeSeconds, bool Stale);

/// <summary>The agents (silos): hardware, frameworks, execution providers, GPUs, heartbeat.</summary>
public static class AgentApi
{
    /// <summary>A heartbeat older than this many intervals marks the agent stale.</summary>
    private const int StaleAfterHeartbeats = 4;

    public static IEndpointRouteBuilder MapAgents(this IEndpointRouteBuilder endpoints)
    {
        var agents = endpoints.MapGroup("/api/agents").WithTags("Agents");
        agents.MapGet("/", ListAsync).WithSummary("Every agent that reported, with hardware and heartbeat.");
        agents.MapGet("/{id}", GetAsync).WithSummary("One agent by id (its silo address).");
        return endpoints;
    }

    private static async Task<Ok<IReadOnlyList<AgentDto>>> ListAsync(IGrainFactory grains, TimeProvider time, Microsoft.Extensions.Options.IOptions<Grains.Agents.AgentOptions> options)
    {
        var index = await grains.GetGrain<IAgentIndexGrain>(IAgentIndexGrain.DefaultKey).ListAsync();
        var agents = new List<AgentDto>();
        foreach (var (id, _) in index)
        {
            if (await grains.GetGrain<IAgentGrain>(id).GetAsync() is { } agent)
            {
                agents.Add(Dto(agent, time, options.Value));
            }
        }

        return TypedResults.Ok<IReadOnlyList<AgentDto>>(agents);
    }

    private static async Task<Ok<AgentDto>> GetAsync(string id, IGrainFactory grains, TimeProvider time, Microsoft.Extensions.Options.IOptions<Grains.Agents.AgentOptions> options) =>
        TypedResults.Ok(Dto(await grains.GetGrain<IAgentGrain>(id).GetAsync() ?? throw ModelException.NotFound($"There is no agent {id}."), time, options.Value));

    private static AgentDto Dto(AgentInfo agent, TimeProvider time, Grains.Agents.AgentOptions options)
    {
        var age = (time.GetUtcNow() - agent.HeartbeatAt).TotalSeconds;
        return new AgentDto(agent, agent.Accelerator, age, age > options.HeartbeatInterval.TotalSeconds * StaleAfterHeartbeats);
    }
}

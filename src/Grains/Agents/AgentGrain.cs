using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Grains.Agents;

/// <summary>The latest report of one agent; kept in memory (agents re-report on every heartbeat).</summary>
public sealed class AgentGrain : Grain, IAgentGrain
{
    private AgentInfo? _agent;

    public async Task ReportAsync(AgentInfo agent)
    {
        _agent = agent;
        await GrainFactory.GetGrain<IAgentIndexGrain>(IAgentIndexGrain.DefaultKey).HeartbeatAsync(agent.Id, agent.HeartbeatAt);
    }

    public Task<AgentInfo?> GetAsync() => Task.FromResult(_agent);
}

/// <summary>Agent ids with their last heartbeat.</summary>
public sealed class AgentIndexGrain : Grain, IAgentIndexGrain
{
    private readonly Dictionary<string, DateTimeOffset> _agents = new(StringComparer.Ordinal);

    public Task HeartbeatAsync(string agentId, DateTimeOffset at)
    {
        _agents[agentId] = at;
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<(string AgentId, DateTimeOffset HeartbeatAt)>> ListAsync() =>
        Task.FromResult<IReadOnlyList<(string, DateTimeOffset)>>(_agents.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => (a.Key, a.Value)).ToArray());

    public Task ForgetAsync(string agentId)
    {
        _agents.Remove(agentId);
        return Task.CompletedTask;
    }
}

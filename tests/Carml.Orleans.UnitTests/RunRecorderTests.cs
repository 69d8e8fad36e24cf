using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Tests;

public sealed class RunRecorderTests
{
    private static RunRecord Run(int i) => new() { Id = RunIds.New(DateTimeOffset.UnixEpoch.AddSeconds(i)), Model = "m", Version = "1", CreatedAt = DateTimeOffset.UnixEpoch };

    private static RunRecorder Recorder(IRunStore store, RunRecorderOptions? options = null) =>
        new(store, Options.Create(options ?? new RunRecorderOptions()), NullLogger<RunRecorder>.Instance);

    [Fact]
    public void A_full_buffer_drops_and_counts_instead_of_blocking()
    {
        var recorder = Recorder(new FlakyStore(0), new RunRecorderOptions { BufferSize = 2 });

        Assert.True(recorder.TryRecord(Run(1)));
        Assert.True(recorder.TryRecord(Run(2)));
        Assert.False(recorder.TryRecord(Run(3)));

        Assert.Equal(1, recorder.Dropped);
    }

    [Fact]
    public async Task Records_are_written_after_the_store_recovers()
    {
        var store = new FlakyStore(failures: 2);
        var recorder = Recorder(store);
        using var stop = new CancellationTokenSource();
        var writer = recorder.WriteAsync(stop.Token);

        for (var i = 0; i < 5; i++)
        {
            recorder.TryRecord(Run(i));
        }

        var all = await store.WaitForAsync(5, TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => writer);

        Assert.Equal(5, all.Count);
        Assert.Equal(2, store.Failures);
        Assert.Equal(5, recorder.Written);
    }

    [Theory]
    [InlineData(RunRecording.All, true)]
    [InlineData(RunRecording.Off, false)]
    public void Recording_mode_decides_what_is_recorded(RunRecording mode, bool expected)
    {
        Assert.Equal(expected, Recorder(new FlakyStore(0), new RunRecorderOptions { Record = mode }).ShouldRecord());
    }

    private sealed class FlakyStore(int failures) : IRunStore
    {
        private readonly List<RunRecord> _saved = [];
        private readonly SemaphoreSlim _changed = new(0);
        private int _remaining = failures;

        public int Failures { get; private set; }

        public Task SaveAsync(IReadOnlyList<RunRecord> runs, CancellationToken cancellationToken)
        {
            if (_remaining-- > 0)
            {
                Failures++;
                throw new InvalidOperationException("database unreachable (simulated)");
            }

            lock (_saved)
            {
                _saved.AddRange(runs);
            }

            _changed.Release();
            return Task.CompletedTask;
        }

        public async Task<List<RunRecord>> WaitForAsync(int count, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                lock (_saved)
                {
                    if (_saved.Count >= count)
                    {
                        return [.. _saved];
                    }
                }

                var left = deadline - DateTime.UtcNow;
                Assert.True(left > TimeSpan.Zero && await _changed.WaitAsync(left), $"only {_saved.Count} of {count} records were written within {timeout}");
            }
        }

        public Task<RunRecord?> GetAsync(string id, CancellationToken cancellationToken) => Task.FromResult<RunRecord?>(null);

        public Task<RunPage> SearchAsync(RunQuery query, CancellationToken cancellationToken) => Task.FromResult(new RunPage([], null));
    }
}

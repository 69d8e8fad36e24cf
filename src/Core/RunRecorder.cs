using System.Threading.Channels;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Core;

public enum RunRecording
{
    /// <summary>Record every prediction.</summary>
    All,

    /// <summary>Record a random fraction (<see cref="RunRecorderOptions.SampleRate"/>) of predictions.</summary>
    Sampled,

    /// <summary>Record no predictions (evaluations are always recorded).</summary>
    Off,
}

public sealed class RunRecorderOptions
{
    public const string Section = "Carml:Runs";

    public RunRecording Record { get; set; } = RunRecording.Sampled;

    /// <summary>Fraction of predictions recorded when <see cref="Record"/> is Sampled.</summary>
    public double SampleRate { get; set; } = 0.01;

    /// <summary>Records waiting to be written; when full, new records are dropped and counted, requests never wait.</summary>
    public int BufferSize { get; set; } = 10_000;

    /// <summary>Most records written in one batch.</summary>
    public int BatchSize { get; set; } = 256;
}

/// <summary>
/// Records prediction runs off the request path: <see cref="TryRecord"/> never blocks (a full buffer drops the record
/// and counts it), and <see cref="WriteAsync"/> drains the buffer into the run store in batches, retrying a failed
/// batch with backoff while requests go on being served.
/// </summary>
public sealed partial class RunRecorder(IRunStore store, IOptions<RunRecorderOptions> options, ILogger<RunRecorder> logger)
{
    private readonly Channel<RunRecord> _buffer = Channel.CreateBounded<RunRecord>(new BoundedChannelOptions(options.Value.BufferSize)
    {
        FullMode = BoundedChannelFullMode.Wait, // TryWrite then answers false when full (DropWrite would answer true)
        SingleReader = true,
    });

    private long _dropped;
    private long _written;

    public long Dropped => Interlocked.Read(ref _dropped);

    public long Written => Interlocked.Read(ref _written);

    /// <summary>Whether this prediction should be recorded, per <see cref="RunRecorderOptions.Record"/>.</summary>
    public bool ShouldRecord() => options.Value.Record switch
    {
        RunRecording.All => true,
        RunRecording.Sampled => Random.Shared.NextDouble() < options.Value.SampleRate,
        _ => false,
    };

    /// <summary>Queues a record; false (and counted) when the buffer is full.</summary>
    public bool TryRecord(RunRecord run)
    {
        if (_buffer.Writer.TryWrite(run))
        {
            return true;
        }

        Interlocked.Increment(ref _dropped);
        return false;
    }

    /// <summary>Writes queued records until cancelled; a store failure is logged and the batch retried.</summary>
    public async Task WriteAsync(CancellationToken cancellationToken)
    {
        var batch = new List<RunRecord>(options.Value.BatchSize);
        var backoff = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            if (batch.Count == 0 && !await _buffer.Reader.WaitToReadAsync(cancellationToken))
            {
                return;
            }

            while (batch.Count < options.Value.BatchSize && _buffer.Reader.TryRead(out var run))
            {
                batch.Add(run);
            }

            try
            {
                await store.SaveAsync(batch, cancellationToken);
                Interlocked.Add(ref _written, batch.Count);
                batch.Clear();
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogWriteFailed(logger, batch.Count, Dropped, e);
                await Task.Delay(backoff, cancellationToken);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

    [LoggerMessage(EventId = 1401, Level = LogLevel.Warning, Message = "Writing {Count} run records failed ({Dropped} dropped so far); retrying")]
    private static partial void LogWriteFailed(ILogger logger, int count, long dropped, Exception exception);
}

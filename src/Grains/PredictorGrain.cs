using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Carml.Orleans.Grains;

/// <summary>
/// Holds one predictor in memory: the model version, settings and usage totals. It expires when idle for
/// <see cref="PredictorOptions.IdleTimeout"/> (judged by the predictor clock on every call, so expiry does not depend
/// on when the runtime collects the activation), and a timer deactivates it once expired so nothing lingers.
/// </summary>
public sealed class PredictorGrain(
    IOptions<PredictorOptions> options,
    [FromKeyedServices(PredictorOptions.ClockKey)] TimeProvider clock) : Grain, IPredictorGrain
{
    private PredictorInfo? _predictor;
    private IGrainTimer? _expiryTimer;

    private TimeSpan IdleTimeout => options.Value.IdleTimeout;

    public Task<PredictorInfo> OpenAsync(ModelId model, string? requestedVersion, PredictorSettings settings)
    {
        if (_predictor is not null && !Expired(_predictor))
        {
            throw new ModelException(ModelErrorKind.AlreadyExists, $"Predictor '{this.GetPrimaryKeyString()}' is already open.");
        }

        var now = clock.GetUtcNow();
        _predictor = new PredictorInfo
        {
            Id = this.GetPrimaryKeyString(),
            Model = model,
            RequestedVersion = requestedVersion,
            Settings = settings,
            OpenedAt = now,
            LastUsedAt = now,
            ExpiresAt = now + IdleTimeout,
        };
        var period = IdleTimeout < TimeSpan.FromMinutes(1) ? IdleTimeout : TimeSpan.FromMinutes(1);
        _expiryTimer ??= this.RegisterGrainTimer(DeactivateWhenExpiredAsync, new GrainTimerCreationOptions(period, period));
        return Task.FromResult(_predictor);
    }

    public Task<PredictorInfo> UseAsync()
    {
        var predictor = Current();
        var now = clock.GetUtcNow();
        _predictor = predictor with { LastUsedAt = now, ExpiresAt = now + IdleTimeout };
        return Task.FromResult(_predictor);
    }

    public Task<PredictorInfo> GetAsync() => Task.FromResult(Current());

    public Task RecordAsync(PredictorUsage request)
    {
        // A request that finishes just after expiry is not an error: its answer is already computed.
        if (_predictor is { } predictor && !Expired(predictor))
        {
            var usage = predictor.Usage;
            _predictor = predictor with
            {
                Usage = new PredictorUsage
                {
                    Requests = usage.Requests + request.Requests,
                    Inputs = usage.Inputs + request.Inputs,
                    Failures = usage.Failures + request.Failures,
                    DecodeMicroseconds = usage.DecodeMicroseconds + request.DecodeMicroseconds,
                    PreprocessMicroseconds = usage.PreprocessMicroseconds + request.PreprocessMicroseconds,
                    InferMicroseconds = usage.InferMicroseconds + request.InferMicroseconds,
                    PostprocessMicroseconds = usage.PostprocessMicroseconds + request.PostprocessMicroseconds,
                    LastRequestId = request.LastRequestId ?? usage.LastRequestId,
                },
            };
        }

        return Task.CompletedTask;
    }

    public Task<PredictorInfo> ResetAsync(ModelId model)
    {
        var predictor = Current();
        var now = clock.GetUtcNow();
        _predictor = predictor with
        {
            Model = model,
            Usage = new PredictorUsage(),
            Generation = predictor.Generation + 1,
            LastUsedAt = now,
            ExpiresAt = now + IdleTimeout,
        };
        return Task.FromResult(_predictor);
    }

    public Task<bool> CloseAsync()
    {
        var open = _predictor is { } predictor && !Expired(predictor);
        _predictor = null;
        DeactivateOnIdle();
        return Task.FromResult(open);
    }

    private PredictorInfo Current()
    {
        if (_predictor is { } predictor && !Expired(predictor))
        {
            return predictor;
        }

        _predictor = null;
        throw ModelException.NotFound(
            $"Predictor '{this.GetPrimaryKeyString()}' is unknown, closed or expired (predictors expire after {IdleTimeout.TotalSeconds:0.###} s idle); open a new one.");
    }

    private bool Expired(PredictorInfo predictor) => clock.GetUtcNow() >= predictor.ExpiresAt;

    private Task DeactivateWhenExpiredAsync(CancellationToken cancellationToken)
    {
        if (_predictor is null || Expired(_predictor))
        {
            _predictor = null;
            DeactivateOnIdle();
        }

        return Task.CompletedTask;
    }
}

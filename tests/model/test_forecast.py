import dataclasses

import numpy as np
import pytest
import torch
from model_fixtures import T0, sine_sequences

from model import InputError, OutOfRangeError, Sequence, forecast, forecast_batch


@pytest.fixture(scope="module")
def contexts():
    return sine_sequences(3, 9, seed=7)


def test_shapes_and_quantile_order(fitted, contexts):
    ctx = contexts[0]
    at = np.linspace(ctx.times[0], ctx.times[-1] + fitted.horizon, 7)
    fc = forecast(fitted, ctx, at, samples=50, quantiles=(0.9, 0.1, 0.5), seed=0)
    assert fc.mean.shape == fc.std.shape == (7, 2)
    assert fc.quantiles.shape == (3, 7, 2)
    assert fc.quantile_levels.tolist() == [0.1, 0.5, 0.9]
    assert np.all(np.diff(fc.quantiles, axis=0) >= 0)
    assert np.all(fc.std > 0)
    assert fc.channels == ("a", "b")
    np.testing.assert_array_equal(fc.times, at)


def test_same_seed_same_answer_other_seed_differs(fitted, contexts):
    ctx = contexts[0]
    at = ctx.times[[0, 3, 5]]
    one = forecast(fitted, ctx, at, samples=20, seed=3)
    two = forecast(fitted, ctx, at, samples=20, seed=3)
    other = forecast(fitted, ctx, at, samples=20, seed=4)
    np.testing.assert_array_equal(one.mean, two.mean)
    np.testing.assert_array_equal(one.quantiles, two.quantiles)
    assert not np.allclose(one.mean, other.mean)


def test_unsorted_repeated_times_scatter_back(fitted, contexts):
    ctx = contexts[1]
    sorted_at = np.array([ctx.times[0], ctx.times[4], ctx.times[-1] + 0.5 * fitted.horizon])
    shuffled = sorted_at[[2, 0, 1, 2, 0]]
    a = forecast(fitted, ctx, sorted_at, samples=30, seed=1)
    b = forecast(fitted, ctx, shuffled, samples=30, seed=1)
    np.testing.assert_allclose(b.mean, a.mean[[2, 0, 1, 2, 0]], rtol=1e-6)
    np.testing.assert_allclose(b.std, a.std[[2, 0, 1, 2, 0]], rtol=1e-6)


def test_batch_equals_single_calls(fitted, contexts):
    requests = [
        (contexts[0], np.array([contexts[0].times[-1] + 1.0, contexts[0].times[2]])),
        (contexts[1], np.linspace(contexts[1].times[0], contexts[1].times[-1] + fitted.horizon, 11)),
        (Sequence(contexts[2].times[:3], contexts[2].values[:3], ("a", "b")), contexts[2].times[1:2]),
    ]
    seeds = [11, 12, 13]
    batched = forecast_batch(fitted, requests, samples=40, seeds=seeds)
    for (ctx, at), seed, got in zip(requests, seeds, batched, strict=True):
        alone = forecast(fitted, ctx, at, samples=40, seed=seed)
        np.testing.assert_allclose(got.mean, alone.mean, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got.quantiles, alone.quantiles, rtol=1e-4, atol=1e-6)


def test_out_of_range_states_limits(fitted, contexts):
    ctx = contexts[0]
    upper = ctx.times[-1] + fitted.horizon
    with pytest.raises(OutOfRangeError) as info:
        forecast(fitted, ctx, [ctx.times[1], upper + 1.0])
    assert info.value.lower == ctx.times[0]
    assert info.value.upper == pytest.approx(upper)
    assert "horizon" in str(info.value)
    with pytest.raises(OutOfRangeError):
        forecast(fitted, ctx, [ctx.times[0] - 1e-3])


def test_context_channels_selected_by_name(fitted, contexts):
    ctx = contexts[0]
    extra = Sequence(ctx.times, np.column_stack([ctx.values[:, 1], np.ones(ctx.times.size), ctx.values[:, 0]]),
                     ("b", "zzz", "a"))
    at = ctx.times[[1, 4]]
    np.testing.assert_allclose(forecast(fitted, extra, at, samples=10, seed=0).mean,
                               forecast(fitted, ctx, at, samples=10, seed=0).mean, rtol=1e-6)
    with pytest.raises(InputError, match=r"lacks channels \['b'\]"):
        forecast(fitted, Sequence(ctx.times, ctx.values[:, 0], ("a",)), at)


def test_forecast_leaves_model_unchanged(fitted, contexts):
    before = {k: v.clone() for k, v in fitted.network.state_dict().items()}
    forecast(fitted, contexts[0], contexts[0].times[:2], samples=5, seed=0)
    after = fitted.network.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bad_at_rejected(fitted, contexts):
    with pytest.raises(InputError, match="finite"):
        forecast(fitted, contexts[0], [np.nan])
    with pytest.raises(InputError, match="1-D"):
        forecast(fitted, contexts[0], np.zeros((2, 2)) + T0)


def test_start_before_context_opens_the_window(fitted, contexts):
    ctx = contexts[0]
    late = Sequence(ctx.times[2:], ctx.values[2:], ctx.channels)
    at = ctx.times[:3]
    with pytest.raises(OutOfRangeError):
        forecast(fitted, late, at, samples=5, seed=0)
    fc = forecast(fitted, late, at, samples=5, seed=0, start=ctx.times[0])
    assert fc.mean.shape == (3, 2)
    assert np.all(np.isfinite(fc.mean))
    with pytest.raises(InputError, match="start"):
        forecast(fitted, late, at, samples=5, seed=0, start=ctx.times[3])


def test_uncalibrated_model_answers_from_its_samples(fitted, contexts):
    """A model without a calibration table (an artifact of an older version) gives the raw sampled spread: the
    mean and quantiles of decoded trajectories plus obs_std noise, batch-independent all the same."""
    raw = dataclasses.replace(fitted, calibration=None)
    ctx = contexts[0]
    at = np.linspace(ctx.times[0], ctx.times[-1] + fitted.horizon, 5)
    fc = forecast(raw, ctx, at, samples=400, quantiles=(0.05, 0.5, 0.95), seed=2)
    assert np.all(np.diff(fc.quantiles, axis=0) >= 0) and np.all(fc.std > 0)
    # with samples from a normal-ish spread, the 5-95% band is about 3.3 std wide, not the calibrated width
    width = (fc.quantiles[2] - fc.quantiles[0]) / fc.std
    assert np.all((width > 2.5) & (width < 4.0))
    calibrated = forecast(fitted, ctx, at, samples=400, quantiles=(0.05, 0.5, 0.95), seed=2)
    assert not np.allclose(calibrated.quantiles, fc.quantiles)
    batched = forecast_batch(raw, [(contexts[1], at - ctx.times[0] + contexts[1].times[0]), (ctx, at)],
                             samples=400, quantiles=(0.05, 0.5, 0.95), seeds=[9, 2])[1]
    np.testing.assert_allclose(batched.quantiles, fc.quantiles, rtol=1e-4, atol=1e-6)


def test_a_fixed_step_solve_past_max_steps_is_refused_not_run(fitted, contexts):
    """Fixed-step solvers do not give up by themselves: a time far from the context would take for ever."""
    from model import SolverError

    ctx = contexts[0]
    fixed = dataclasses.replace(fitted, config=fitted.config.replace(solver="rk4", step_size=0.5, max_steps=50))
    forecast(fixed, ctx, [ctx.times[-1]], samples=2, seed=0)  # near: answered
    far = ctx.times[0] - 1e6 * fitted.normaliser.time_scale  # a million model-time units before the context
    with pytest.raises(SolverError, match="max_steps"):
        forecast(fixed, ctx, [ctx.times[-1]], samples=2, seed=0, start=far)

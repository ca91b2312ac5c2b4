"""A classical part per channel: each channel of a series chooses its own (model.backtest.per_channel), and a
frame fits each channel with its own part (model.frame.ChannelFrame)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model import ModelConfig, Sequence, fit, forecast
from model.backtest import (
    CHANNEL_CUTOFFS,
    STAYS,
    candidate_errors,
    candidates_of,
    choice_sets,
    choose_component,
    chosen_index,
    cutoffs_of,
    history_cutoffs,
)
from model.frame import SCALE_FLOOR, ChannelFrame, Component, frame_of, frames_sharing_columns
from model.io import from_bytes, to_bytes
from model.local import choose_sizes
from tests.model.model_fixtures import DAY, T0


def cycle_and_rise(seed: int, days: int = 40) -> Sequence:
    """Channel "cycle": a daily cycle around a steady level; channel "rise": a level that keeps rising, read at
    about a third of the times; readings every hour, 60% kept."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(24 * days) * 3600.0
    cycle = 10 + 3 * np.sin(2 * np.pi * t / DAY) + 0.3 * rng.normal(size=t.size)
    rise = 0.5 * (t - T0) / DAY + 0.3 * rng.normal(size=t.size)
    rise[rng.random(t.size) < 0.65] = np.nan
    kept = rng.random(t.size) < 0.6
    return Sequence(t[kept], np.stack([cycle, rise], axis=1)[kept], ("cycle", "rise"))


def _choose(s: Sequence, horizon: float) -> tuple[Component, list, list, object, np.ndarray]:
    sizes = choose_sizes([s], ModelConfig(horizon=horizon))
    cuts, _, _ = cutoffs_of([s], sizes, np.random.default_rng(0))
    past = history_cutoffs([s], sizes)
    std = np.nanstd(s.values, axis=0)
    return choose_component([s], cuts, past, sizes, std), cuts, past, sizes, std


def test_each_channel_gets_the_part_a_model_of_that_channel_alone_would_choose():
    s = cycle_and_rise(0)
    chosen, cuts, past, sizes, std = _choose(s, 2 * DAY)
    assert len(chosen.channels) == 2, chosen
    cycle, rise = chosen.channels
    assert any(abs(p - DAY) < 60 for p in cycle.seasons), cycle
    assert rise.trend and not rise.seasons, rise
    for c in range(2):  # the same times (rows where the channel is unobserved kept), cut-offs and sizes
        alone = Sequence(s.times, s.values[:, c:c + 1], s.channels[c:c + 1])
        assert chosen.channels[c] == choose_component([alone], cuts, past, sizes, std[c:c + 1]), c
    # the fields outside the parts: the choice over both channels together
    sets = choice_sets([s], cuts, past, sizes)
    candidates = candidates_of(sizes)
    joint = chosen_index(candidate_errors([s], sets, candidates, std), sets, candidates, sizes.horizon)[0]
    assert dataclasses.replace(chosen, channels=()) == candidates[joint]
    assert chosen.reach == max(cycle.context, rise.context) and candidates[joint].reach == candidates[joint].context


def test_channels_that_choose_alike_keep_one_component():
    """A channel that is another's double scores every candidate the same in units of its std: one choice."""
    rng = np.random.default_rng(1)
    t = T0 + np.sort(rng.uniform(0, 30 * DAY, 600))
    a = 5 + np.sin(2 * np.pi * t / DAY) + 0.1 * rng.normal(size=t.size)
    s = Sequence(t, np.stack([a, 2 * a], axis=1), ("a", "b"))
    chosen = _choose(s, DAY)[0]
    assert chosen.channels == () and any(abs(p - DAY) < 60 for p in chosen.seasons), chosen


def test_a_channel_read_rarely_gets_the_last_value():
    """A channel scored at a few cut-offs (12 readings beside 600 of another; some sets of cut-offs score none of
    them) is not given a part chosen on those few errors among thousands of candidates, nor the other channel's
    daily cycle drawn through its dozen points: the last value, as the model's default is."""
    rng = np.random.default_rng(0)
    t = T0 + np.sort(rng.uniform(0, 60 * DAY, 600))
    x = np.stack([20 + 3 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.5, t.size), np.full(t.size, np.nan)], 1)
    x[rng.choice(t.size, 12, replace=False), 1] = rng.normal(5, 1, 12)
    chosen, cuts, past, sizes, _ = _choose(Sequence(t, x, ("often", "rarely")), 2 * DAY)
    scored = sum(bool(np.isfinite(x[c.future, 1]).any()) for c in cuts + past)
    assert 0 < scored < CHANNEL_CUTOFFS
    assert chosen.channels, chosen
    rarely = chosen.channels[1]
    assert not rarely.trend and not rarely.seasons and not rarely.echo, rarely
    assert rarely.persistence >= STAYS * sizes.horizon, rarely
    assert chosen.channels[0].seasons  # the other channel keeps its day
    floor = SCALE_FLOOR * np.nanstd(x, axis=0)
    ahead = frame_of(chosen, t, x, floor).classical(t[-1] + np.linspace(3600, 2 * DAY, 12))
    last = x[~np.isnan(x[:, 1]), 1][-1]
    np.testing.assert_allclose(ahead[:, 1], last, rtol=1e-5)  # the last residual fades over 1,000 horizons


def _per_channel_component() -> tuple[Component, Sequence]:
    s = cycle_and_rise(2)
    chosen = _choose(s, 2 * DAY)[0]
    assert chosen.channels
    return dataclasses.replace(chosen, linear_inside=True, unit_prior=(0.5, 0.7)), s


def test_a_channel_frame_is_each_channels_own_frame_side_by_side():
    component, s = _per_channel_component()
    floor = SCALE_FLOOR * np.nanstd(s.values, axis=0)
    frame = frame_of(component, s.times, s.values, floor)
    assert isinstance(frame, ChannelFrame)
    inside = s.times[-300:-1] + 600.0  # between readings
    ahead = s.times[-1] + np.linspace(0, 2 * DAY, 50)
    at = np.concatenate([inside, ahead])
    for c in range(2):  # the oracle: a frame of that channel alone with its own part
        alone = frame_of(component.part(c), s.times, s.values[:, c:c + 1], floor[c:c + 1])
        assert alone.component.linear_inside and alone.component.unit_prior == component.unit_prior[c:c + 1]
        np.testing.assert_array_equal(frame.classical(at)[:, c], alone.classical(at)[:, 0])
        np.testing.assert_array_equal(frame.base(at)[:, c], alone.base(at)[:, 0])
        np.testing.assert_array_equal(frame.to_local(s.times, s.values)[:, c],
                                      alone.to_local(s.times, s.values[:, c:c + 1])[:, 0])
        assert frame.scale[c] == alone.scale[0] and frame.unit[c] == alone.unit[0]
        knots = frame.knot_r[:, c][~np.isnan(frame.knot_r[:, c])]
        np.testing.assert_array_equal(knots, alone.knot_r[:, 0][~np.isnan(alone.knot_r[:, 0])])
        for linear in (False, True):
            np.testing.assert_array_equal(frame.inside(linear).classical(inside)[:, c],
                                          alone.inside(linear).classical(inside)[:, 0])
    # the parts' contexts differ: the shorter one's residuals are NaN where only the longer reaches
    assert frame.knot_t.size == max(p.knot_t.size for p in frame.parts)


def test_a_channel_frame_refuses_what_only_a_single_component_does():
    component, s = _per_channel_component()
    floor = SCALE_FLOOR * np.nanstd(s.values, axis=0)
    frame = frame_of(component, s.times, s.values, floor)
    with pytest.raises(ValueError, match="component per channel"):
        frame.residual(s.times[-1:] + 1.0, component.channels[0])
    with pytest.raises(ValueError, match="part per channel"):
        frames_sharing_columns([component], s.times, s.values, floor)
    with pytest.raises(ValueError, match="parts for 2 channels"):
        frame_of(component, s.times, s.values[:, :1], floor[:1])


def test_a_per_channel_component_scores_as_its_parts_do():
    """candidate_errors fits a per-channel component whole (a shared choice offered to one series of a panel):
    each channel's errors are its part's on that channel."""
    component, s = _per_channel_component()
    component = dataclasses.replace(component, linear_inside=False, unit_prior=())
    sizes = choose_sizes([s], ModelConfig(horizon=2 * DAY))
    cuts, _, _ = cutoffs_of([s], sizes, np.random.default_rng(0))
    sets = choice_sets([s], cuts, history_cutoffs([s], sizes), sizes)
    std = np.nanstd(s.values, axis=0)
    errors = candidate_errors([s], sets, [component, *component.channels], std)
    for k, cuts_k in enumerate(sets):
        for j in range(len(cuts_k)):
            for c in range(2):
                np.testing.assert_allclose(errors[0][k][j][:, c], errors[1 + c][k][j][:, c], rtol=1e-9, atol=1e-12)


def test_a_per_channel_component_round_trips_and_old_ones_have_none():
    component, _ = _per_channel_component()
    assert Component.from_dict(component.to_dict()) == component
    single = component.channels[0]
    assert "channels" not in single.to_dict()
    assert Component.from_dict(single.to_dict()).channels == ()


def test_a_model_forecasts_each_channel_with_its_own_part():
    s = cycle_and_rise(0)
    horizon = 2 * DAY
    fitted = fit([s], ModelConfig(horizon=horizon, train_steps=20, seed=0))
    assert fitted.component is not None and len(fitted.component.channels) == 2
    assert fitted.context_seconds == fitted.component.reach
    at = s.times[-1] + np.linspace(3600, horizon, 24)
    restored = from_bytes(to_bytes(fitted))
    assert restored.component == fitted.component
    classical = forecast(fitted, s, at, part="classical").mean
    np.testing.assert_array_equal(forecast(restored, s, at, part="classical").mean, classical)
    truth_rise = 0.5 * (at - T0) / DAY
    assert np.mean(np.abs(classical[:, 1] - truth_rise)) < 1.0  # the rise goes on (the noise's std is 0.3)
    cycle = classical[:, 0]
    assert np.ptp(cycle) > 4  # the day's swing of 6 is in the forecast

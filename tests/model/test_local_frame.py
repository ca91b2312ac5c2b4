"""The local frame: the classical component, sizes chosen from the data, training on windows at
random times, forecasts stitched from windows, the backtest, and artifacts that keep all of it."""

import copy
import dataclasses

import numpy as np
import pytest
from model_fixtures import DAY, T0, YEAR, monthly_climate, seasonal

import model.frame
import model.local
import model.predict
from model import (
    InputError,
    ModelConfig,
    OutOfRangeError,
    Sequence,
    fit,
    forecast,
    forecast_batch,
    from_bytes,
    to_bytes,
)
from model.backtest import (
    LAST_VALUE_Z,
    MIN_BLEND_VALUES,
    STAYS,
    Cutoff,
    _halves,
    _scores,
    _Trim,
    _trimmed_mae,
    baseline,
    beats_last_value,
    best_candidate,
    blend_weight,
    candidates_of,
    choose_component,
    choose_inside,
    chosen_index,
    cutoffs_of,
    history_cutoffs,
    last_value,
    weighable,
)
from model.frame import PRIOR_DOF, SCALE_FLOOR, Component, frame_of, frames_sharing_columns
from model.local import choose_sizes, nonnegative_channels, positive_channels
from model.seasons import harmonics


def test_a_positive_channel_is_fitted_on_the_log_scale():
    """A channel the component logs: a growth at a constant rate is a straight line there, so the forecast keeps
    the rate (a line fitted to the values would fall behind); between observations the forecast is still the
    values' own straight line; a channel that is zero somewhere in the context is fitted as it is."""
    t = T0 + np.arange(40) * DAY
    grow = lambda s: 2.0 * np.exp(0.05 * (s - T0) / DAY)  # noqa: E731
    x = np.stack([grow(t), np.where(np.arange(40) == 10, 0.0, 1.0 + 0.01 * np.arange(40))], axis=1)
    component = Component(trend=True, seasons=(), harmonics=(), half_life=1e12, damping=1e12, context=60 * DAY,
                          encoder=DAY, log=(True, True))
    frame = frame_of(component, t, x, np.array([0.01, 0.01]))
    assert frame.logged.tolist() == [True, False]
    ahead = t[-1] + np.array([5.0, 10.0]) * DAY
    np.testing.assert_allclose(frame.classical(ahead)[:, 0], grow(ahead), rtol=0.01)
    linear = dataclasses.replace(component, log=())
    assert np.all(frame_of(linear, t, x, np.array([0.01, 0.01])).classical(ahead)[:, 0] < 0.9 * grow(ahead))
    np.testing.assert_allclose(frame.classical(ahead)[:, 1], 1.0 + 0.01 * (ahead - T0) / DAY, atol=0.05)
    np.testing.assert_allclose(frame.to_original(t, frame.to_local(t, x)), x)
    between = dataclasses.replace(frame, component=dataclasses.replace(component, linear_inside=True))
    mid = t[20] + DAY / 4
    np.testing.assert_allclose(between.classical(np.array([mid]))[0, 0], 0.75 * x[20, 0] + 0.25 * x[21, 0])
    assert np.isnan(frame.to_local(t[:1], np.array([[-1.0, 1.0]]))[0, 0])  # no log of a negative value
    large = frame_of(component, t, x * 1000.0, np.array([50.0, 50.0]))  # the floor is in original units
    assert large.scale[0] == pytest.approx(np.std(np.log(x[:, 0] * 1000.0)))  # the spread of the logs, not 50


def test_a_count_that_reaches_zero_keeps_its_forecasts_and_bands_at_or_above_zero():
    """A channel never negative and sometimes exactly zero (a count: a few events a day, none on most days) is
    bounded below by zero: its band's lower edge, which the calibrated residuals put below zero, and its mean stop
    there. The other channels are left as they are: one with a negative value, one always positive (a level that
    might fall below zero later) and the counts in a model saved before the bound existed."""
    rng = np.random.default_rng(3)
    t = T0 + np.sort(rng.uniform(0, 60 * DAY, 500))
    counts = rng.poisson(0.4 * (1 + np.sin(2 * np.pi * (t - T0) / DAY)), t.size).astype(float)
    x = np.stack([counts, counts - 0.2, counts + 0.5], axis=1)
    series = Sequence(t, x, ("events", "shifted", "positive"))
    assert nonnegative_channels([series]) == (True, False, False)
    assert nonnegative_channels([Sequence(t, np.full((t.size, 1), 1.0), ("v",)),
                                 Sequence(t, np.full((t.size, 1), 0.0), ("v",))]) == (True,)  # zero in one series
    config = ModelConfig(frame="local", horizon=2 * DAY, context=6 * DAY, train_steps=1)  # fixed: fewer candidates
    fitted = fit([series], config)
    assert fitted.component.nonnegative == (True, False, False)
    at = t[-1] + np.linspace(0.05, 1.0, 30) * fitted.horizon
    inside = np.sort(rng.uniform(t[-200], t[-1], 20))
    fc = forecast(fitted, series, np.concatenate([inside, at]), samples=16, quantiles=(0.05, 0.5, 0.95), seed=0)
    older = copy.copy(fitted)
    older.component = dataclasses.replace(fitted.component, nonnegative=())
    unbounded = forecast(older, series, np.concatenate([inside, at]), samples=16, quantiles=(0.05, 0.5, 0.95),
                         seed=0)
    assert unbounded.quantiles[0, :, 0].min() < 0  # the calibrated band reaches below zero unbounded
    np.testing.assert_array_equal(fc.quantiles[:, :, 0], np.maximum(unbounded.quantiles[:, :, 0], 0.0))
    np.testing.assert_array_equal(fc.mean[:, 0], np.maximum(unbounded.mean[:, 0], 0.0))
    np.testing.assert_array_equal(fc.quantiles[:, :, 1:], unbounded.quantiles[:, :, 1:])
    assert fc.quantiles[0, :, 1].min() < 0  # the shifted counts may go below zero: they have
    classical = forecast(fitted, series, at, part="classical")
    assert classical.mean[:, 0].min() >= 0
    assert Component.from_dict(fitted.component.to_dict()) == fitted.component
    saved = {k: v for k, v in fitted.component.to_dict().items() if k != "nonnegative"}  # saved before it existed
    assert Component.from_dict(saved).nonnegative == ()


def test_channels_with_only_positive_values_are_the_ones_logged():
    t = T0 + np.arange(30) * DAY
    x = np.stack([1.0 + np.arange(30.0), np.arange(30.0), np.full(30, np.nan)], axis=1)
    x[0, 2] = 3.0
    x[5, 0] = np.nan
    series = [Sequence(t, x, ("up", "from zero", "once"))]
    assert positive_channels(series) == (True, False, True)
    assert choose_sizes(series, ModelConfig(horizon=5 * DAY, log_scale=True)).log == (True, False, True)
    assert choose_sizes(series, ModelConfig(horizon=5 * DAY)).log == ()
    component = Component(trend=False, seasons=(), harmonics=(), half_life=DAY, damping=DAY, context=DAY,
                          encoder=DAY, log=(True, False, True))
    assert Component.from_dict(component.to_dict()) == component
    old = {k: v for k, v in component.to_dict().items() if k != "log"}  # saved before the log scale existed
    assert Component.from_dict(old).log == ()


def test_component_reproduces_a_noise_free_season_and_trend_and_extrapolates_it():
    t = T0 + np.sort(np.random.default_rng(0).uniform(0, 20 * DAY, 300))
    truth = lambda s: 3 + 0.2 * (s - T0) / DAY + 2 * np.sin(2 * np.pi * s / DAY) + np.cos(4 * np.pi * s / DAY)  # noqa: E731
    component = Component(trend=True, seasons=(DAY,), harmonics=(3,), half_life=1e9, damping=1e12, context=30 * DAY,
                          encoder=DAY)
    frame = frame_of(component, t, truth(t)[:, None], np.array([1e-3]))
    ahead = t[-1] + np.linspace(0.1, 2, 9) * DAY
    np.testing.assert_allclose(frame.base(ahead)[:, 0], truth(ahead), atol=0.02)  # the ridge shrinks a little
    np.testing.assert_allclose(frame.to_original(ahead, frame.to_local(ahead, truth(ahead)[:, None])),
                               truth(ahead)[:, None])


def test_component_scale_is_floored_and_unobserved_channels_stay_zero():
    t = T0 + np.arange(10.0)
    values = np.stack([np.full(10, 4.0), np.full(10, np.nan)], axis=1)
    component = Component(False, (), (), 5.0, 10.0, 10.0, 10.0)
    frame = frame_of(component, t, values, np.array([0.5, 0.25]))
    np.testing.assert_allclose(frame.scale, [0.5, 0.25])
    np.testing.assert_allclose(frame.base(t[-1:] + 1), [[4.0, 0.0]], atol=1e-6)


def test_a_season_named_in_the_config_is_tried_beside_none_where_the_history_holds_three_of_its_cycles():
    # counts with no cycle the data would show: the named year is offered anyway, and the backtest decides
    month = YEAR / 12
    rng = np.random.default_rng(0)
    t = T0 + np.arange(160) * month
    kept = rng.random(t.size) < 0.6
    counts = Sequence(t[kept], rng.poisson(1.5, t.size)[kept, None] * 1.0, ("v",))
    assert choose_sizes([counts], ModelConfig(horizon=YEAR)).seasons == ()
    sizes = choose_sizes([counts], ModelConfig(horizon=YEAR, seasons=[YEAR]))
    assert sizes.seasons == (YEAR,)
    assert {c.seasons for c in candidates_of(sizes)} == {(), (YEAR,)}
    def first(months: int) -> Sequence:
        early = counts.times < T0 + months * month
        return Sequence(counts.times[early], counts.values[early], ("v",))
    assert choose_sizes([first(50)], ModelConfig(horizon=YEAR, seasons=[YEAR])).seasons == ()  # 2.9 years less it
    assert choose_sizes([first(52)], ModelConfig(horizon=YEAR, seasons=[YEAR])).seasons == (YEAR,)  # 3.2 years


def test_a_robust_component_fits_the_median_level_where_a_few_points_jump():
    rng = np.random.default_rng(0)
    t = T0 + np.arange(60.0) * DAY
    x = np.where(rng.random(60) < 0.25, 12.0, 0.0)[:, None]  # mostly 0, a quarter of the days 12
    plain = Component(False, (), (), 1e12, 1.0, 100 * DAY, 10 * DAY)
    robust = Component(False, (), (), 1e12, 1.0, 100 * DAY, 10 * DAY, robust=True)
    assert frame_of(plain, t, x, np.array([0.1])).base(t[-1:])[0, 0] == pytest.approx(x.mean(), abs=1e-3)
    assert abs(frame_of(robust, t, x, np.array([0.1])).base(t[-1:])[0, 0]) < 0.1
    assert Component.from_dict(robust.to_dict()) == robust
    candidates = candidates_of(choose_sizes([Sequence(t, x, ("v",))], ModelConfig(horizon=5 * DAY)))
    plain_ones = {c for c in candidates if not c.robust}
    assert {dataclasses.replace(c, robust=False) for c in candidates if c.robust} == plain_ones  # each both ways


def test_component_choice_starts_from_the_last_value_on_a_random_walk_and_keeps_the_history_of_a_steady_cycle():
    rng = np.random.default_rng(3)
    walk_t = np.arange(2000.0)[rng.random(2000) < 0.6]
    walk = Sequence(walk_t, np.cumsum(rng.normal(size=2000))[walk_t.astype(int)], ("v",))
    sizes = choose_sizes([walk], ModelConfig(horizon=200.0))
    assert any(c.persistence >= STAYS * sizes.horizon for c in candidates_of(sizes))  # the last value is offered
    std = np.std(walk.values, axis=0)
    cuts, _, _ = cutoffs_of([walk], sizes, np.random.default_rng(0))
    chosen = choose_component([walk], cuts, history_cutoffs([walk], sizes), sizes, std)
    assert not chosen.seasons, chosen
    # one step on, the forecast is within half a step's spread (1) of the last value: the walk's level is where it
    # ended, not a mean over its past (the walk wanders tens of steps over the context)
    start = frame_of(chosen, walk.times, walk.values, SCALE_FLOOR * std).classical(walk.times[-1:] + 1.0)
    assert abs(float(start[0, 0]) - float(walk.values[-1, 0])) < 0.5, chosen

    climate = monthly_climate(40, 1)
    sizes = choose_sizes([climate], ModelConfig(horizon=8 * 365 * DAY))
    cuts, _, _ = cutoffs_of([climate], sizes, np.random.default_rng(0))
    chosen = choose_component([climate], cuts, history_cutoffs([climate], sizes), sizes,
                              np.std(climate.values, axis=0))
    assert chosen.seasons and not chosen.trend, chosen
    assert chosen.context > 3 * sizes.context / 2 or chosen.half_life >= chosen.context, chosen  # a long memory


def test_an_undamped_trend_is_taken_only_where_it_wins_clearly():
    sizes = choose_sizes([Sequence(np.arange(200.0), np.zeros((200, 1)), ("v",))], ModelConfig(horizon=40.0))
    candidates = candidates_of(sizes)
    undamped = np.array([c.trend and c.damping >= STAYS * sizes.horizon for c in candidates])
    assert undamped.any() and not undamped.all()
    line, other = int(np.flatnonzero(undamped)[0]), int(np.flatnonzero(~undamped)[-1])
    scores = np.full(len(candidates), 2.0)
    scores[other] = 1.0
    scores[line] = 0.81  # below every other candidate's, but not by enough
    assert best_candidate(scores, candidates, sizes.horizon, cutoffs=30) == other
    scores[line] = 0.79
    assert best_candidate(scores, candidates, sizes.horizon, cutoffs=30) == line
    assert best_candidate(scores, candidates, sizes.horizon, cutoffs=23) == other  # too few cut-offs to tell
    scores[line], scores[other] = 1.0, 0.5  # a bounded candidate that wins is taken as always
    assert best_candidate(scores, candidates, sizes.horizon, cutoffs=30) == other


def test_the_last_value_stays_unless_the_choice_beats_it_clearly_on_the_cut_offs():
    """chosen_index: the lowest score, but where that candidate's MAE per cut-off beats the last value's by less
    than LAST_VALUE_Z standard errors of the paired differences, the last value."""
    sizes = choose_sizes([Sequence(np.arange(200.0), np.zeros((200, 1)), ("v",))], ModelConfig(horizon=40.0))
    candidates = candidates_of(sizes)
    last = last_value(candidates, sizes.horizon)
    assert last is not None
    kept = candidates[last]
    assert not kept.trend and not kept.seasons and not kept.echo and kept.persistence >= STAYS * sizes.horizon
    other = next(i for i, c in enumerate(candidates) if c.trend and c.damping <= sizes.horizon and c.robust
                 and c.half_life != kept.half_life)
    # standing in for a choice, the last value reads the history as that choice does (its band's unit)
    last = last_value(candidates, sizes.horizon, like=candidates[other])
    like = candidates[last]
    assert (like.context, like.half_life, like.robust) == (candidates[other].context, candidates[other].half_life,
                                                          True)
    assert like.persistence >= STAYS * sizes.horizon and not like.trend
    sets = [[Cutoff(0, 10 + j, np.arange(11 + j, 13 + j)) for j in range(24)]]  # 24 cut-offs of 2 points each
    rng = np.random.default_rng(0)
    theirs = 1.0 + rng.uniform(0.0, 0.2, 24)

    def errors(mine: np.ndarray) -> list[list[list[np.ndarray]]]:
        out = [[[np.full((2, 1), 3.0) for _ in range(24)]] for _ in candidates]
        out[last] = [[np.full((2, 1), e) for e in theirs]]
        out[other] = [[np.full((2, 1), e) for e in mine]]
        return out

    # lower on average, by one standard error of the differences: the lowest score, not a clear win
    noise = rng.normal(size=24)
    noise = (noise - noise.mean()) / noise.std(ddof=1)  # mean 0, standard deviation 1
    for z, expected in ((1.0, last), (LAST_VALUE_Z + 0.1, other)):
        mine = theirs - (z / np.sqrt(24)) * 0.3 - 0.3 * noise  # differences: mean z * 0.3 / sqrt(24), sd 0.3
        index, scores = chosen_index(errors(mine), sets, candidates, sizes.horizon)
        assert int(np.nanargmin(scores)) == other  # the other has the lowest score either way
        assert index == expected, z
        assert beats_last_value(errors(mine), sets, other, last) == (expected == other)
        # beside a shared component (a panel's), that one is the default and the lowest score is what competes
        assert chosen_index(errors(mine), sets, candidates, sizes.horizon, last_value_default=False)[0] == other
    # a clear, steady win is taken; so is the last value where it scores lowest itself
    assert chosen_index(errors(theirs - 0.2), sets, candidates, sizes.horizon)[0] == other
    assert chosen_index(errors(theirs + 0.2), sets, candidates, sizes.horizon)[0] == last
    # a candidate whose cut-off has nothing observed is compared on the others alone
    unseen = errors(theirs - 0.2)
    unseen[other][0][0] = np.full((2, 1), np.nan)
    assert beats_last_value(unseen, sets, other, last)


def test_steady_growth_is_forecast_as_a_line_that_goes_on():
    """A noisy straight line, irregularly sampled: a trend damped over the horizon would fall short of the line by
    more than a third of the horizon's rise at its end; the component chosen keeps going."""
    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(0.0, 300.0, 180))
    growth = Sequence(t, (0.5 * t + rng.normal(scale=1.0, size=t.size))[:, None], ("v",))
    sizes = choose_sizes([growth], ModelConfig(horizon=60.0))
    std = np.std(growth.values, axis=0)
    cuts, _, _ = cutoffs_of([growth], sizes, np.random.default_rng(0))
    chosen = choose_component([growth], cuts, history_cutoffs([growth], sizes), sizes, std)
    assert chosen.trend and chosen.damping > sizes.horizon, chosen
    end = frame_of(chosen, growth.times, growth.values, SCALE_FLOOR * std).classical(np.array([t[-1] + 60.0]))
    assert abs(float(end[0, 0]) - 0.5 * (t[-1] + 60.0)) < 2.0, (chosen, end)
    short = Sequence(t[-16:], growth.values[-16:], ("v",))  # 16 points of the same line: too few to bet on it
    sizes = choose_sizes([short], ModelConfig(horizon=60.0))
    cuts, _, _ = cutoffs_of([short], sizes, np.random.default_rng(0))
    past = history_cutoffs([short], sizes)
    assert len(cuts) + len(past) < 24
    assert choose_component([short], cuts, past, sizes, std).damping <= sizes.horizon


def test_a_candidates_score_leaves_out_each_series_worst_tenth_of_its_cut_offs():
    """_trimmed_mae: the MAE pooled over the points of the cut-offs but each series' worst tenth of those that
    score something (by each cut-off's own MAE); nothing out of a series with fewer than ten; a cut-off with
    nothing observed never out, nor counted (a channel read rarely, scored alone: most of its cut-offs see none)."""
    first = [np.full((3, 1), 0.1 * (j + 1)) for j in range(20)]  # cut-off MAEs 0.1 ... 2.0: 1.9 and 2.0 go
    second = [np.full((2, 1), 0.5) for _ in range(8)] + [np.full((2, 1), 50.0)]  # 9 cut-offs: all stay
    third = [np.full((1, 1), np.nan)] + [np.full((1, 1), 1.0 + j) for j in range(10)]  # 10 scored: the 10.0 goes
    fourth = [np.full((1, 1), np.nan)] * 18 + [np.full((1, 1), 4.0), np.full((1, 1), 6.0)]  # 2 scored: both stay
    errors = first + second + third + fourth
    cutoffs = [Cutoff(k, 1, np.arange(2, 2 + e.shape[0])) for k, part in enumerate((first, second, third, fourth))
               for e in part]
    order = np.random.default_rng(0).permutation(len(errors))  # the series' cut-offs interleaved
    kept = np.concatenate(first[:18] + second + third[:-1] + fourth)
    got = _trimmed_mae([errors[i] for i in order], _Trim.of([cutoffs[i] for i in order]))
    assert got == pytest.approx(float(np.nanmean(kept)))
    assert got < float(np.nanmean(np.concatenate(errors)))  # the plain pooled MAE: more than that
    # per channel, as _mae: a cut-off's MAE is its channels' mean, the pooled one each channel's mean averaged
    two = [np.array([[1.0, np.nan]]), np.array([[np.nan, 3.0]])] + [np.array([[0.0, 0.0]])] * 8
    assert _trimmed_mae(two, _Trim.of([Cutoff(0, 1, np.arange(2, 3))] * 10)) == pytest.approx((1.0 / 9 + 0.0) / 2)


def test_between_observations_the_line_or_the_curve_whichever_interpolates_held_out_points_better():
    # a smooth daily cycle seen every ~3 hours: the component's curve beats the line between neighbours
    rng = np.random.default_rng(4)
    t = T0 + np.sort(rng.uniform(0, 20 * DAY, 160))
    smooth = Sequence(t, 3 + np.sin(2 * np.pi * t / DAY), ("v",))
    component = Component(trend=False, seasons=(DAY,), harmonics=(2,), half_life=1e9, damping=DAY, context=20 * DAY,
                          encoder=DAY)
    assert not choose_inside([smooth], component, np.array([0.7])).linear_inside
    # the same cycle under a random walk: the neighbours know the level better than the curve does
    walk = Sequence(t, 3 + np.sin(2 * np.pi * t / DAY) + np.cumsum(rng.normal(0, 1.0, t.size)), ("v",))
    chosen = choose_inside([walk], component, np.std(walk.values, axis=0))
    assert chosen.linear_inside
    frame = frame_of(chosen, walk.times, walk.values, np.array([0.1]))
    between = (walk.times[:-1] + walk.times[1:]) / 2
    np.testing.assert_allclose(frame.classical(between)[:, 0], np.interp(between, walk.times, walk.values[:, 0]),
                               atol=1e-9)
    assert Component.from_dict(chosen.to_dict()) == chosen


def test_the_curve_between_observations_must_win_over_the_whole_history_not_only_the_newest_context():
    # 60 days of a random walk, then 10 days of a clean daily cycle: the curve wins in the newest context alone,
    # the line on the history, which is where most queries between observations fall
    rng = np.random.default_rng(5)
    t = T0 + np.sort(rng.uniform(0, 70 * DAY, 560))
    cycle = 3 + np.sin(2 * np.pi * t / DAY)
    walk = np.cumsum(rng.normal(0, 1.0, t.size))
    values = np.where(t < T0 + 60 * DAY, cycle + walk, cycle + walk[t < T0 + 60 * DAY][-1])
    series = Sequence(t, values, ("v",))
    component = Component(trend=False, seasons=(DAY,), harmonics=(2,), half_life=1e9, damping=DAY, context=10 * DAY,
                          encoder=DAY)
    newest = head(series, np.inf)
    newest = Sequence(newest.times[t >= T0 + 60.5 * DAY], newest.values[t >= T0 + 60.5 * DAY], ("v",))
    assert not choose_inside([newest], component, np.std(values)[None]).linear_inside  # the cycle alone: the curve
    assert choose_inside([series], component, np.std(values)[None]).linear_inside


def test_a_small_win_of_the_curve_between_observations_is_not_enough():
    # spikes on a flat series: a daily curve fitted through them interpolates the held-out points a little better
    # than the line (0.99 of its squared error with this seed), by chance; the line is kept unless the curve cuts
    # the error by a fifth (INSIDE_MARGIN)
    rng = np.random.default_rng(7)
    t = T0 + np.sort(rng.uniform(0, 40 * DAY, 240))
    spikes = np.where(rng.random(t.size) < 0.1, rng.uniform(5, 15, t.size), rng.poisson(1.0, t.size))
    series = Sequence(t, spikes.astype(np.float64), ("v",))
    component = Component(trend=False, seasons=(DAY,), harmonics=(3,), half_life=1e9, damping=DAY, context=40 * DAY,
                          encoder=DAY)
    assert choose_inside([series], component, np.std(spikes)[None]).linear_inside


def head(series: Sequence, before: float) -> Sequence:
    keep = series.times < before
    return Sequence(series.times[keep], series.values[keep], series.channels)


@pytest.fixture(scope="module")
def local_fit():
    """A model trained on the first 38 of 40 days; the fixture hands out those 38 days."""
    whole = seasonal(24 * 40, 2)
    series = head(whole, T0 + 38 * DAY)
    config = ModelConfig(frame="local", horizon=2 * DAY, context=18 * DAY, train_steps=30, latent_dim=4,
                         hidden_dim=16, units=16, batch_size=16, gradient="backprop")  # the context: 2.5 weeks
    return series, fit([series], config)


def test_local_bands_hold_the_later_values(local_fit):
    """The 90% band, calibrated on backtest cut-offs, holds most of the two days after training (noise 0.1 around
    a daily and a weekly season), and the forecast carries the daily season rather than a flat line."""
    series, fitted = local_fit
    whole = seasonal(24 * 40, 2)
    later = whole.times > series.times[-1]
    fc = forecast(fitted, series, whole.times[later], samples=64, quantiles=(0.05, 0.95), seed=0)
    truth = whole.values[later, 0]
    inside = (fc.quantiles[0, :, 0] <= truth) & (truth <= fc.quantiles[1, :, 0])
    assert 0.75 <= inside.mean() <= 1.0
    assert np.mean(np.abs(fc.mean[:, 0] - truth)) < 0.5 * np.mean(np.abs(truth - series.values[-1, 0]))
    assert fc.mean[:, 0].std() > 0.5 * truth.std()


def test_local_band_width_comes_from_the_calibration_not_the_network_samples(local_fit):
    """In the local frame a band is the calibrated quantiles per quarter of the horizon in the window's own scale:
    with the network's residual given full weight, forecasts drawn with other seeds and sample counts move the
    mean a little but not the band's width, and the width is the window's scale times obs_std times the calibrated
    quantile spread of each time's quarter (standardising by the samples' spread narrowed it where they agree)."""
    series, fitted = local_fit
    weighted = copy.copy(fitted)
    weighted.component = dataclasses.replace(fitted.component, blend=(1.0,))
    at = series.times[-1] + np.linspace(0.1, 1.0, 12) * fitted.horizon
    widths = []
    for seed, samples in ((0, 16), (1, 64)):
        fc = forecast(weighted, series, at, samples=samples, quantiles=(0.05, 0.95), seed=seed)
        widths.append(fc.quantiles[1, :, 0] - fc.quantiles[0, :, 0])
    np.testing.assert_allclose(widths[0], widths[1], rtol=1e-9)
    frame = frame_of(fitted.component, series.times, series.values, SCALE_FLOOR * fitted.normaliser.std)
    calibration = fitted.calibration
    table = calibration.table(np.array([0.05, 0.95]))  # (bands, C, 2)
    band = calibration.bands(fitted.normaliser.model_time(at, series.times[-1]))
    obs_std = float(fitted.network.observation_std()[0])
    assert fitted.component.residual_bands and frame.unit[0] != 1.0
    expected = frame.scale[0] * frame.unit[0] * obs_std * (table[band, 0, 1] - table[band, 0, 0])
    np.testing.assert_allclose(widths[0], expected, rtol=1e-6)
    # a model saved before residual_bands: its calibration standardised by the window's scale alone
    older = copy.copy(weighted)
    older.component = dataclasses.replace(weighted.component, residual_bands=False)
    fc = forecast(older, series, at, samples=16, quantiles=(0.05, 0.95), seed=0)
    np.testing.assert_allclose(fc.quantiles[1, :, 0] - fc.quantiles[0, :, 0], expected / frame.unit[0], rtol=1e-6)


def test_band_unit_is_the_spread_the_component_leaves():
    """A forecast band's unit is the standard deviation of what the component leaves in the context (n - p degrees
    of freedom), not the spread of the values: a strong season the component fits does not widen it. Models saved
    before it existed keep the values' spread (unit 1), as their calibration was made with it."""
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 40 * DAY, 600))
    noise = 0.1 * rng.standard_normal(t.size)
    component = Component(trend=False, seasons=(DAY,), harmonics=(2,), half_life=1e12, damping=DAY,
                          context=100 * DAY, encoder=10 * DAY)
    floor = np.array([1e-3])
    seasonal = frame_of(component, t, (10 + 5 * np.sin(2 * np.pi * t / DAY) + noise)[:, None], floor)
    quiet = frame_of(component, t, (10 + noise)[:, None], floor)
    assert seasonal.scale[0] > 10 * quiet.scale[0]  # the values' spread: the season's
    for frame in (seasonal, quiet):
        assert frame.scale[0] * frame.unit[0] == pytest.approx(0.1, rel=0.1)  # the noise's
    older = dataclasses.replace(component, residual_bands=False)
    assert frame_of(older, t, (10 + noise)[:, None], floor).unit[0] == 1.0
    assert Component.from_dict(component.to_dict()) == component
    saved = {k: v for k, v in component.to_dict().items() if k != "residual_bands"}  # saved before it existed
    assert Component.from_dict(saved).residual_bands is False
    # as many points as columns: nothing left to measure the residuals by, the values' spread stays the unit
    assert frame_of(component, t[:5], (10 + noise[:5])[:, None], floor).unit[0] == 1.0
    # a perfect fit: the floor (in local units) bounds the unit from below
    exact = frame_of(component, t, (10 + 5 * np.sin(2 * np.pi * t / DAY))[:, None], np.array([0.05]))
    assert exact.scale[0] * exact.unit[0] == pytest.approx(0.05)


def test_band_unit_shrinks_towards_the_typical_contexts():
    """With a unit prior (the typical context's residual spread on the cut-offs), a context's own spread is shrunk
    towards it as if the prior were PRIOR_DOF more residuals: a short smooth context no longer gets a unit near
    zero, a long noisy one keeps about its own, and a context with no residual freedom takes the prior."""
    rng = np.random.default_rng(1)
    component = Component(trend=False, seasons=(), harmonics=(), half_life=1e12, damping=DAY, context=1e9,
                          encoder=DAY, unit_prior=(0.1,))
    floor = np.array([1e-6])

    def spread(values: np.ndarray) -> float:
        frame = frame_of(component, np.arange(values.size) * 60.0, values[:, None], floor)
        return float(frame.scale[0] * frame.unit[0])

    smooth = 5.0 + 1e-3 * rng.standard_normal(6)
    squares = float(np.sum((smooth - smooth.mean()) ** 2))  # one column (the level) fitted
    assert spread(smooth) == pytest.approx(np.sqrt((squares + PRIOR_DOF * 0.1**2) / (5 + PRIOR_DOF)), rel=1e-6)
    assert spread(smooth) > 0.08
    noisy = 5.0 + rng.standard_normal(4000)
    assert spread(noisy) == pytest.approx(noisy.std(), rel=0.01)
    assert spread(np.array([5.0])) == pytest.approx(0.1)  # no residual freedom: the prior alone
    alone = frame_of(dataclasses.replace(component, unit_prior=()), np.arange(6) * 60.0, smooth[:, None], floor)
    assert alone.scale[0] * alone.unit[0] == pytest.approx(np.sqrt(squares / 5))  # without a prior: its own
    assert Component.from_dict(component.to_dict()) == component
    saved = {k: v for k, v in component.to_dict().items() if k != "unit_prior"}  # saved before it existed
    assert Component.from_dict(saved).unit_prior == ()


def test_band_unit_weighs_the_residuals_as_the_fit_weighs_their_points():
    """With a half-life short beside the context, the band unit is the spread of the residuals the fit weighs: a
    level that follows the newest days leaves large residuals far back, and they neither widen the unit nor make
    it grow with the context's length. The plain spread over the whole context (models saved before
    weighted_unit existed) grows with it."""
    rng = np.random.default_rng(2)
    t = np.arange(0.0, 40 * DAY, 600.0)
    values = (np.where(t < 30 * DAY, 0.0, 10.0) + 0.1 * rng.standard_normal(t.size))[:, None]
    component = Component(trend=False, seasons=(), harmonics=(), half_life=DAY / 2, damping=DAY,
                          context=40 * DAY, encoder=DAY)
    plain = dataclasses.replace(component, weighted_unit=False)
    floor = np.array([1e-6])

    def unit(c: Component, days: float) -> float:
        recent = t >= t[-1] - days * DAY
        frame = frame_of(c, t[recent], values[recent], floor)
        return float(frame.scale[0] * frame.unit[0])

    for days in (5, 20, 40):
        assert unit(component, days) == pytest.approx(0.1, rel=0.15)  # the noise's
    assert unit(plain, 5) == pytest.approx(0.1, rel=0.15)  # all of it after the jump: the same either way
    assert unit(plain, 20) > 20 * unit(component, 20) and unit(plain, 40) > unit(plain, 20)
    # a half-life that keeps every point's weight: the plain spread with n - p degrees of freedom
    flat = dataclasses.replace(component, half_life=1e12)
    x = values[t >= t[-1] - 5 * DAY, 0]
    assert unit(flat, 5) == pytest.approx(float(np.std(x, ddof=1)), rel=1e-6)
    assert Component.from_dict(component.to_dict()) == component
    saved = {k: v for k, v in component.to_dict().items() if k != "weighted_unit"}  # saved before it existed
    assert Component.from_dict(saved).weighted_unit is False


def test_local_fit_sizes_component_and_backtest(local_fit):
    _series, fitted = local_fit
    assert len(fitted.component.unit_prior) == 1 and 0 < fitted.component.unit_prior[0] < 1  # noise 0.1 around seasons
    assert fitted.horizon == 2 * DAY
    assert fitted.component is not None and fitted.context_seconds >= fitted.horizon
    assert fitted.component.encoder <= fitted.context_seconds
    steps, scores = [h["step"] for h in fitted.history], [h["val_mae"] for h in fitted.history]
    backtest = fitted.backtest
    assert backtest["cutoffs"] > 5 and backtest["points"] > 0 and backtest["steps"] == steps[-1] <= 30
    assert backtest["stopped_early"] is (steps[-1] < 30)
    if backtest["stopped_early"]:  # the default patience ran out: that many scores after the best, none lower
        assert len(scores) - 1 - int(np.argmin(scores)) == model.local.PATIENCE
    assert set(backtest["methods"]) >= {"model", "classical", "last_value", "drift"}
    assert backtest["methods"]["last_value"]["rmae"] == pytest.approx(1.0)
    best = backtest["best_baseline"]
    assert backtest["beats_baselines"] == (backtest["methods"]["model"]["mae"] <= backtest["methods"][best]["mae"])
    assert 0 <= backtest["methods"]["model"]["coverage90"] <= 1
    assert backtest["methods"]["model"]["interval90"] > 0 and backtest["methods"]["classical"]["interval90"] is None
    assert all(band["interval90"] is not None for band in backtest["methods"]["model"]["bands"])
    assert backtest["calibrated_until_s"] == fitted.horizon  # the bands' residuals reach the whole horizon


def test_backtest_scores_a_bands_width_and_misses_per_quarter_of_the_horizon():
    """Two channels (std 1 and 10), four points at 1-4 s past their cut-offs (one per quarter of a 4 s horizon)."""
    truth = np.array([[0.0, 0.0], [5.0, np.nan], [-3.0, 50.0], [1.0, 10.0]])
    lower = np.array([[-1.0, -10.0], [0.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    upper = np.array([[1.0, 10.0], [4.0, 0.0], [1.0, 20.0], [1.0, 20.0]])
    std = np.array([1.0, 10.0])
    scores = _scores(np.abs(truth) / std, np.array([1.0, 2.0, 3.0, 4.0]), 4.0, (lower, upper), truth, std)
    # channel 0: widths 2, 4, 2, 2; misses 0, 1 above, 2 below, 0 -> 2, 24, 42, 2
    # channel 1 in tens: widths 2, -, 2, 2; misses 0, -, 3 above, 0 -> 2, -, 62, 2
    assert scores["interval90"] == pytest.approx(((2 + 24 + 42 + 2) / 4 + (2 + 62 + 2) / 3) / 2)
    assert [b["interval90"] for b in scores["bands"]] == pytest.approx([2.0, 24.0, (42 + 62) / 2, 2.0])
    assert scores["coverage90"] == pytest.approx(4 / 7)  # the observed values inside, over both channels
    assert [b["coverage90"] for b in scores["bands"]] == pytest.approx([1.0, 0.0, 0.0, 1.0])
    plain = _scores(np.abs(truth) / std, np.array([1.0, 2.0, 3.0, 4.0]), 4.0, None, truth, std)
    assert plain["interval90"] is None and plain["coverage90"] is None and plain["mae"] == scores["mae"]


def test_local_forecast_reaches_the_horizon_and_refuses_past_it(local_fit):
    series, fitted = local_fit
    last = series.times[-1]
    fc = forecast(fitted, series, [last + fitted.horizon], samples=8, seed=0)
    assert np.all(np.isfinite(fc.mean))
    with pytest.raises(OutOfRangeError, match="horizon"):
        forecast(fitted, series, [last + fitted.horizon * 1.01], samples=8, seed=0)


def test_the_horizons_end_is_answered_however_its_time_was_rounded(local_fit):
    """The service sends times in seconds from integer microseconds: the horizon's end, last_us + horizon_us over
    1e6, can be one rounding past last + horizon summed in seconds. It is answered; a microsecond later is not."""
    series, fitted = local_fit
    h_us = round(fitted.horizon * 1e6)
    rng = np.random.default_rng(0)
    last_us = next(k for k in (int(rng.integers(1, 10**13)) for _ in range(100_000))
                   if (k + h_us) / 1e6 > k / 1e6 + fitted.horizon)
    context = Sequence(series.times - series.times[-1] + last_us / 1e6, series.values, series.channels)
    end = (last_us + h_us) / 1e6
    assert np.all(np.isfinite(forecast(fitted, context, [end], samples=4, seed=0).mean))
    with pytest.raises(OutOfRangeError, match="horizon"):
        forecast(fitted, context, [(last_us + h_us + 1) / 1e6], samples=4, seed=0)
    # times before 1970 are negative seconds: the horizon's end is answered there too (the spare goes up, not down)
    before = Sequence(series.times - series.times[-1] - 3e9, series.values, series.channels)
    end = before.times[-1] + fitted.horizon
    assert end < 0 and np.all(np.isfinite(forecast(fitted, before, [end], samples=4, seed=0).mean))


def test_local_forecast_starts_at_the_level_of_the_last_observations(local_fit):
    series, fitted = local_fit
    assert fitted.component.log == ()  # log_scale is off by default
    shifted = Sequence(series.times, series.values + 1000.0, series.channels)  # far outside the training range
    near = series.times[-1] + 600.0
    plain = forecast(fitted, series, [near], samples=16, seed=0).mean
    moved = forecast(fitted, shifted, [near], samples=16, seed=0).mean
    np.testing.assert_allclose(moved - plain, 1000.0, atol=1e-6)  # the frame moves with the data
    assert abs(plain[0, 0] - np.nanmean(series.values[-6:])) < 1.5


def test_on_the_log_scale_the_frame_scales_with_the_data():
    """With log_scale the positive series' channel is fitted on the log scale: a context a thousand times larger is
    forecast a thousand times larger. A context far below the training range (every value negative) is fitted as
    it is, and answers at its own level too."""
    series = head(seasonal(24 * 20, 2), T0 + 18 * DAY)
    config = ModelConfig(frame="local", horizon=DAY, train_steps=10, latent_dim=4, hidden_dim=16, units=16,
                         batch_size=16, gradient="backprop", log_scale=True)
    fitted = fit([series], config)
    assert fitted.component.log == (True,)
    near = series.times[-1] + 600.0
    plain = forecast(fitted, series, [near], samples=16, seed=0).mean
    scaled = Sequence(series.times, series.values * 1000.0, series.channels)
    np.testing.assert_allclose(forecast(fitted, scaled, [near], samples=16, seed=0).mean, plain * 1000.0, rtol=1e-6)
    assert abs(plain[0, 0] - np.nanmean(series.values[-6:])) < 1.5
    below = Sequence(series.times, series.values - 1000.0, series.channels)
    moved = forecast(fitted, below, [near], samples=16, seed=0).mean
    assert abs(moved[0, 0] - (np.nanmean(series.values[-6:]) - 1000.0)) < 1.5
    at = series.times[-1] + np.array([3600.0, DAY])
    frame = frame_of(fitted.component, series.times, series.values, SCALE_FLOOR * fitted.normaliser.std)
    np.testing.assert_allclose(forecast(fitted, series, at, part="classical").mean,
                               np.exp(frame.base(at) + frame.residual(at) * frame.scale))


def test_times_far_back_and_ahead_in_one_request_match_their_own_answers(local_fit):
    series, fitted = local_fit
    ahead, back = series.times[-1] + DAY, series.times[30] + 60.0  # a window of its own, long before the last point
    both = forecast(fitted, series, [ahead, back, ahead], samples=16, seed=5)
    np.testing.assert_array_equal(both.mean[0], both.mean[2])
    assert abs(both.mean[1, 0] - np.interp(back, series.times, series.values[:, 0])) < 1.0
    swapped = forecast(fitted, series, [back, ahead], samples=16, seed=5)
    np.testing.assert_array_equal(swapped.mean[[1, 0]], both.mean[:2])


def test_classical_part_is_the_component_alone(local_fit):
    series, fitted = local_fit
    at = series.times[-1] + np.array([3600.0, DAY])
    classical = forecast(fitted, series, at, part="classical")
    frame = frame_of(fitted.component, series.times, series.values, SCALE_FLOOR * fitted.normaliser.std)
    np.testing.assert_allclose(classical.mean, frame.base(at) + frame.residual(at) * frame.scale)
    assert np.all(classical.std == 0)
    with pytest.raises(InputError, match="part"):
        forecast_batch(fitted, [(series, at)], part="ode")


def test_local_model_round_trips_through_bytes(local_fit):
    series, fitted = local_fit
    again = from_bytes(to_bytes(fitted))
    assert again.component == fitted.component and again.backtest == fitted.backtest
    at = series.times[-1] + np.array([60.0, DAY])
    np.testing.assert_array_equal(forecast(again, series, at, samples=8, seed=1).quantiles,
                                  forecast(fitted, series, at, samples=8, seed=1).quantiles)


def test_chosen_sizes_follow_the_data_when_not_given():
    from model.local import choose_sizes

    series = seasonal(24 * 40, 3)
    sizes = choose_sizes([series], ModelConfig(frame="local"))
    gap = float(np.median(np.diff(series.times)))
    assert sizes.horizon == pytest.approx(min(0.2 * (series.times[-1] - series.times[0]), 64 * gap))
    assert sizes.context >= sizes.horizon and sizes.encoder <= sizes.context
    given = choose_sizes([series], ModelConfig(frame="local", horizon=DAY, context=3 * DAY, seasons=[DAY]))
    assert (given.horizon, given.context, given.seasons) == (DAY, 3 * DAY, (DAY,))


def test_frames_sharing_columns_are_frame_of_to_the_bit_but_the_band_unit():
    """The candidates' scoring fits many components on one context, sharing its points and design matrix: each frame
    must be what frame_of gives (a choice between near-equal candidates hangs on the last bits)."""
    rng = np.random.default_rng(8)
    t = T0 + np.sort(rng.choice(np.arange(400.0), 240, replace=False)) * DAY
    values = np.stack([20 + np.sin(2 * np.pi * t / YEAR) + rng.normal(0, 0.3, t.size),
                       np.where(rng.random(t.size) < 0.3, np.nan, rng.normal(0, 1, t.size))], axis=1)
    values[:40, 0] -= 25  # non-positive early values: a logged channel fitted as it is where a context holds them
    base = Component(True, (YEAR,), (2,), 30 * DAY, 50 * DAY, 300 * DAY, 60 * DAY, log=(True, False))
    parts = [dataclasses.replace(base, half_life=h, robust=r, persistence=p, echo=e)
             for h in (10 * DAY, 90 * DAY, 1e12) for r in (False, True)
             for p in (0.0, 5 * DAY) for e in (0.0, 30 * DAY)]
    floor = np.array([0.01, 0.01])
    logged = []
    for end in (200, 239):  # the first context holds the non-positive values, the second does not
        context_t, context_x = t[:end + 1], values[:end + 1]
        shared = frames_sharing_columns(parts, context_t, context_x, floor)
        logged.append(bool(shared[0].logged[0]))
        for part, frame in zip(parts, shared, strict=True):
            plain = frame_of(part, context_t, context_x, floor)
            for name in ("coef", "scale", "knot_t", "knot_r", "logged"):
                np.testing.assert_array_equal(getattr(frame, name), getattr(plain, name), err_msg=name)
            assert frame.end == plain.end and frame.component == part
            np.testing.assert_array_equal(frame.unit, np.ones(2))  # scoring reads no band
    assert logged == [False, True]
    with pytest.raises(ValueError, match="differ in more than"):
        frames_sharing_columns([base, dataclasses.replace(base, context=200 * DAY)], t, values, floor)


def test_a_long_context_is_fitted_on_a_sample_and_keeps_every_residual(monkeypatch):
    """A context of more points than CONTEXT_POINTS: the component is fitted on that many spread over it (nearly
    the fit on all of them), the residuals are taken at every point (a query between two readings is answered from
    those two), and the candidates' shared fits are still frame_of's to the bit."""
    rng = np.random.default_rng(2)
    t = T0 + np.arange(30_000) * 60.0 + rng.uniform(0, 5, 30_000)
    x = (20 + 3 * np.sin(2 * np.pi * t / DAY) + 0.5 * rng.normal(size=t.size))[:, None]
    component = Component(True, (DAY,), (3,), 2 * DAY, DAY, 30 * DAY, DAY, robust=True)
    floor = np.array([0.01])
    frame = frame_of(component, t, x, floor)
    assert t.size > model.frame.CONTEXT_POINTS and frame.knot_t.size == t.size
    np.testing.assert_allclose(frame.knot_r[:, 0] * frame.scale[0], x[:, 0] - frame.base(t)[:, 0], atol=1e-9)
    shared = frames_sharing_columns([component, dataclasses.replace(component, half_life=DAY / 4)], t, x, floor)
    np.testing.assert_array_equal(shared[0].coef, frame.coef)
    monkeypatch.setattr(model.frame, "CONTEXT_POINTS", t.size)
    whole = frame_of(component, t, x, floor)
    day = [np.hypot(f.coef[2, 0], f.coef[3, 0]) for f in (frame, whole)]  # the day's first Fourier pair
    assert abs(day[0] - day[1]) < 0.02 and abs(day[1] - 3) < 0.02, day
    last_day = t[t > t[-1] - DAY]
    truth = 20 + 3 * np.sin(2 * np.pi * last_day / DAY)
    for f in (frame, whole):  # where forecasts start: within the noise's share of a few hundred recent points
        assert np.abs(f.base(last_day)[:, 0] - truth).max() < 0.15


def test_residual_interpolates_inside_the_context_and_fades_after_it():
    t = T0 + np.arange(0.0, 10.0)
    values = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 5.0])[:, None]
    component = Component(False, (), (), 1e9, 10.0, 100.0, 10.0, persistence=2.0)
    frame = frame_of(component, t, values, np.array([1e-3]))
    np.testing.assert_allclose(frame.classical(t), values, atol=1e-9)  # at the observations: the observations
    np.testing.assert_allclose(frame.classical(t[:1] + 0.5), [[0.5]], atol=1e-9)  # between them: the line
    last = (5.0 - frame.base(t[-1:])[0, 0]) / frame.scale[0]
    np.testing.assert_allclose(frame.residual(t[-1:] + 2.0), [[last / 2]])  # after: half gone in one half-life
    none = frame_of(Component(False, (), (), 1e9, 10.0, 100.0, 10.0), t, values, np.array([1e-3]))
    np.testing.assert_allclose(none.residual(t[-1:] + 2.0), [[0.0]])
    at = np.concatenate([t[:3] + 0.5, t[-1:] + 2.0])  # inside the context and past it
    np.testing.assert_array_equal(none.residual(at, component), frame.residual(at))  # the other's way past it
    np.testing.assert_array_equal(frame.residual(at, none.component), none.residual(at))


def test_an_echo_repeats_the_last_season_and_with_a_flat_component_is_the_seasonal_naive_forecast():
    rng = np.random.default_rng(5)
    t = T0 + np.sort(rng.choice(np.arange(120.0), 80, replace=False)) * DAY
    season = 7 * DAY
    values = (np.where(np.remainder(t, season) < 2 * DAY, 10.0, 1.0) + rng.normal(0, 0.1, t.size))[:, None]
    flat = Component(False, (), (), STAYS * 200 * DAY, 10.0, 200 * DAY, 10.0, echo=season)
    frame = frame_of(flat, t, values, np.array([1e-3]))
    ahead = t[-1] + np.linspace(0.2, 20, 50) * DAY
    naive = baseline("seasonal_naive", Sequence(t, values, ("v",)), t.size - 1, ahead, season)
    np.testing.assert_allclose(frame.classical(ahead), naive, atol=1e-9)
    assert Component.from_dict(flat.to_dict()) == flat
    assert Component.from_dict({k: v for k, v in flat.to_dict().items() if k != "echo"}).echo == 0.0  # older


def test_a_sharp_seasonal_peak_is_drawn_with_the_fourier_pairs_the_fine_gap_allows():
    """A December peak on a monthly series with 45% of its months kept: the median gap (two months) allows three
    Fourier pairs a year, too few to draw one month's peak; a fifth of the gaps are a month, and the candidates with
    the pairs that gap allows draw it."""
    rng = np.random.default_rng(1)
    month = YEAR / 12
    k = np.arange(12 * 24)
    kept = rng.random(k.size) < 0.45
    truth = 10.0 + 5.0 * (k % 12 == 11)
    t, x = T0 + k * month, truth + rng.normal(0, 0.2, k.size)
    train = k < 12 * 20
    series = Sequence(t[kept & train], x[kept & train, None], ("v",))
    sizes = choose_sizes([series], ModelConfig(horizon=2 * YEAR, seasons=[YEAR]))
    assert sizes.fine_gap < sizes.gap and harmonics(YEAR, sizes.fine_gap) > harmonics(YEAR, sizes.gap)
    candidates = candidates_of(sizes)
    plain = [c for c in candidates if c.harmonics == tuple(harmonics(p, sizes.gap) for p in c.seasons)]
    finer = candidates[len(plain):]
    assert finer == [dataclasses.replace(c, harmonics=(harmonics(YEAR, sizes.fine_gap),)) for c in plain if c.seasons]

    cuts, _, _ = cutoffs_of([series], sizes, np.random.default_rng(0))
    chosen = choose_component([series], cuts, history_cutoffs([series], sizes), sizes, np.std(series.values, axis=0))
    assert chosen.harmonics == (harmonics(YEAR, sizes.fine_gap),), chosen
    future = ~train

    def mae(component: Component) -> float:
        frame = frame_of(component, series.times, series.values, SCALE_FLOOR * np.std(series.values, axis=0))
        return float(np.mean(np.abs(frame.classical(t[future])[:, 0] - truth[future])))
    assert mae(chosen) < 0.7 * mae(dataclasses.replace(chosen, harmonics=(harmonics(YEAR, sizes.gap),)))

    # evenly spaced data: the fine gap is the median one, and no candidate is offered twice
    even = Sequence(t[train], x[train, None], ("v",))
    sizes = choose_sizes([even], ModelConfig(horizon=2 * YEAR, seasons=[YEAR]))
    assert sizes.fine_gap == sizes.gap
    assert all(c.harmonics == (harmonics(YEAR, sizes.gap),) * len(c.seasons) for c in candidates_of(sizes))


def test_component_choice_takes_the_echo_for_a_season_no_few_sines_draw():
    """A sharp, irregular weekly profile (hourly, 60% of hours kept): only last week's values carry it."""
    rng = np.random.default_rng(0)
    n = 24 * 7 * 12
    t = T0 + np.sort(rng.choice(np.arange(n) * 3600.0, int(0.6 * n), replace=False))
    profile = rng.choice([0.0, 4.0], 168, p=[0.8, 0.2])
    hour = (np.remainder(t - T0, 7 * DAY) // 3600).astype(int)
    series = Sequence(t, (profile[hour] + rng.normal(0, 0.1, t.size))[:, None], ("v",))
    sizes = choose_sizes([series], ModelConfig(horizon=3 * DAY, seasons=[7 * DAY]))
    cuts, _, _ = cutoffs_of([series], sizes, np.random.default_rng(0))
    chosen = choose_component([series], cuts, history_cutoffs([series], sizes), sizes, np.std(series.values, axis=0))
    assert chosen.echo == 7 * DAY, chosen


def test_the_network_gets_weight_only_where_it_helps_on_both_halves_of_the_cutoffs():
    cuts = [Cutoff(0, end, np.array([end + 1])) for end in (10, 20, 30, 40)] + [Cutoff(1, 5, np.array([6]))]
    older, newer = _halves(cuts)
    assert sorted(older) == [0, 1, 4] and sorted(newer) == [2, 3, 4]
    n = MIN_BLEND_VALUES
    truth, classical = np.zeros(n), np.ones(n)
    helps, hurts = truth.copy(), 2 * classical  # the network's forecast: right, or further off than the classical
    assert blend_weight([(truth, helps, classical), (truth, helps, classical)]) == 1.0
    assert blend_weight([(truth, helps, classical), (truth, hurts, classical)]) == 0.0
    halfway = np.full(n, 0.5)  # on one half the network is right, on the other it is halfway there
    assert blend_weight([(truth, helps, classical), (truth + 0.5, helps, classical)]) == 0.5
    assert blend_weight([(truth, halfway, classical), (truth, helps, classical)]) == 1.0
    # too few values on either half to show the network helps: the classical forecast alone
    few = truth.copy()
    few[0] = np.nan
    assert blend_weight([(truth, helps, classical), (few, helps, classical)]) == 0.0
    assert blend_weight([(np.full(3, np.nan), helps[:3], classical[:3])]) == 0.0
    assert blend_weight([]) == 0.0


def test_a_channel_is_weighable_only_with_enough_values_on_both_halves_of_the_cutoffs():
    n = MIN_BLEND_VALUES
    values = np.ones((4 * n, 2))
    values[2 * n + 1:, 1] = np.nan  # the second channel: nothing observed in the newer half's future
    series = Sequence(T0 + np.arange(4 * n) * 60.0, values, ("full", "gappy"))
    cuts = [Cutoff(0, 0, np.arange(1, n + 1)), Cutoff(0, 2 * n, np.arange(2 * n + 1, 3 * n + 1))]
    assert weighable([series], cuts).tolist() == [True, False]
    short = [Cutoff(0, 0, np.arange(1, n)), cuts[1]]  # one value short on the older half
    assert weighable([series], short).tolist() == [False, False]
    assert weighable([series], []).tolist() == [False, False]


def test_training_stops_once_patience_scores_find_nothing_better_and_keeps_what_the_whole_run_would():
    """The default patience: training stops after model.local.PATIENCE validation scores in a row without a lower
    one. The same fit with a patience longer than the run goes to the end (the oracle): every step before the stop
    is the same, its best score came before the stop, and so the kept weights, the blend, the bands and the
    forecasts are the whole run's."""
    series = head(seasonal(24 * 40, 2), T0 + 38 * DAY)
    config = ModelConfig(frame="local", horizon=2 * DAY, context=4 * DAY, train_steps=60, latent_dim=4, hidden_dim=16,
                         units=16, batch_size=16, gradient="backprop")  # a fixed context: fewer candidates to choose
    stopped, whole_run = fit([series], config), fit([series], dataclasses.replace(config, patience=1000))
    scores = [h["val_mae"] for h in whole_run.history]
    best = int(np.argmin(scores))
    assert not whole_run.backtest["stopped_early"] and whole_run.history[-1]["step"] == 60
    assert stopped.backtest["stopped_early"] and len(stopped.history) == best + model.local.PATIENCE + 1
    assert stopped.backtest["steps"] == stopped.history[-1]["step"] < 60
    assert [(h["step"], h["loss"], h["val_mae"]) for h in stopped.history] == [
        (h["step"], h["loss"], h["val_mae"]) for h in whole_run.history[:len(stopped.history)]]
    assert stopped.component == whole_run.component
    at = series.times[-1] + np.linspace(0.1, 2, 9) * DAY
    a, b = (forecast(f, series, at, samples=16, quantiles=(0.05, 0.95), seed=0) for f in (stopped, whole_run))
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.quantiles, b.quantiles)


def test_a_series_too_short_to_weigh_the_network_skips_its_training_and_forecasts_the_same(monkeypatch):
    """30 yearly points: each half of the cut-offs scores fewer values than the blend needs, so the network would
    get no weight; the fit skips training, says so, and forecasts (mean and bands) exactly what the same fit with
    the network trained gives."""
    rng = np.random.default_rng(3)
    t = T0 + np.arange(30) * 365.25 * DAY
    series = Sequence(t, (6 - 0.1 * np.arange(30) + 0.1 * rng.normal(size=30))[:, None], ("rate",))
    config = ModelConfig(frame="local", horizon=6 * 365.25 * DAY, train_steps=20, latent_dim=2, hidden_dim=8,
                         units=8, batch_size=8)
    calls = []
    skipped = fit([series], config, progress=lambda *a: calls.append(a))
    assert skipped.backtest["network_trained"] is False and skipped.backtest["steps"] == 0
    assert skipped.history == [] and calls == [] and skipped.component.weights(1).tolist() == [0.0]
    monkeypatch.setattr(model.local, "weighable", lambda sequences, cutoffs: np.ones(1, dtype=bool))
    trained = fit([series], config)
    assert trained.backtest["network_trained"] is True and trained.backtest["steps"] == trained.history[-1]["step"] > 0
    at = t[-1] + np.linspace(0.1, 6, 7) * 365.25 * DAY
    a, b = (forecast(f, series, at, samples=16, seed=0) for f in (skipped, trained))
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
    np.testing.assert_allclose(a.quantiles, b.quantiles, rtol=1e-9)
    # a blend of 0 everywhere: forecasts answer without solving the network's ODE, and the same as solving it
    assert a.nfe == 0
    monkeypatch.setattr(model.predict, "network_unused", lambda fitted, prepared: False)
    solved = forecast(skipped, series, at, samples=16, seed=0)
    assert solved.nfe > 0
    np.testing.assert_allclose(solved.mean, a.mean, rtol=1e-12)
    np.testing.assert_allclose(solved.quantiles, a.quantiles, rtol=1e-12)
    np.testing.assert_allclose(solved.std, a.std, rtol=1e-12)
    raw = copy.copy(skipped)
    raw.calibration = None  # uncalibrated: bands from the observation noise, drawn the same either way
    raw_solved = forecast(raw, series, at, samples=16, seed=0)
    monkeypatch.undo()
    raw_unsolved = forecast(raw, series, at, samples=16, seed=0)
    assert raw_unsolved.nfe == 0 and raw_solved.nfe > 0
    np.testing.assert_allclose(raw_unsolved.mean, raw_solved.mean, rtol=1e-12)
    np.testing.assert_allclose(raw_unsolved.quantiles, raw_solved.quantiles, rtol=1e-12)
    weighed = copy.copy(skipped)
    weighed.component = dataclasses.replace(skipped.component, blend=(0.5,))  # the network's output counts: solved
    assert forecast(weighed, series, at, samples=16, seed=0).nfe > 0


def test_interpolation_returns_the_observations_at_their_times(local_fit):
    series, fitted = local_fit
    at = series.times[[40, 41, -1]]
    fc = forecast(fitted, series, at, samples=8, seed=0)
    np.testing.assert_allclose(fc.mean, series.values[[40, 41, -1]], atol=1e-9)


@pytest.mark.parametrize("n", [2, 3, 12])
def test_very_short_series_train_and_forecast(n):
    """Too short for cut-offs or seasons: the defaults still give a model that answers up to its horizon."""
    t = T0 + np.arange(n) * 10.0
    series = Sequence(t, np.sin(t - T0), ("a",))
    fitted = fit([series], ModelConfig(train_steps=3, batch_size=4, latent_dim=2, hidden_dim=4, units=4))
    fc = forecast(fitted, series, [t[-1] + fitted.horizon], samples=4, seed=0)
    assert fitted.horizon > 0 and np.all(np.isfinite(fc.mean)) and np.all(np.isfinite(fc.quantiles))
    assert fitted.backtest["cutoffs"] >= 0

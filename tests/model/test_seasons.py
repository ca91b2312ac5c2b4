"""Seasons found on data that comes in bursts, on long fine series, and the periodogram against a plain fit; the
component chosen where the bursts lie further apart than the horizon.

On regular, thinned and randomly timed series: seasons where they are and none in noise or a random walk, a period
measured finer than its grid, a cycle whose phase wanders, glitches held."""

import numpy as np
import pytest
from model_fixtures import DAY, T0, YEAR, monthly_climate, seasonal

from model import ModelConfig, Sequence, fit, forecast
from model.backtest import (
    HISTORY_CUTOFFS,
    MAX_CUTOFFS,
    choose_component,
    cutoffs_of,
    far_cutoffs,
    history_cutoffs,
)
from model.frame import SCALE_FLOOR, frame_of
from model.local import choose_sizes
from model.seasons import _power, bursty, clipped, detect_seasons, refine_period, steadiness


def burst_times(rng: np.random.Generator, every_days: float, days: float) -> np.ndarray:
    """An hour of readings a minute apart, one burst every `every_days` days at a random hour of its day."""
    starts = T0 + np.arange(0, days, every_days) * DAY + rng.uniform(0, DAY, int(np.ceil(days / every_days)))
    t = (starts[:, None] + np.arange(60) * 60.0 + rng.uniform(0, 10, (starts.size, 60))).ravel()
    return np.sort(t[t < T0 + days * DAY])


def cycles(t: np.ndarray, weekly: float, rng: np.random.Generator) -> Sequence:
    y = 5 + np.sin(2 * np.pi * t / DAY) + weekly * np.sin(2 * np.pi * t / (7 * DAY)) + 0.2 * rng.normal(size=t.size)
    return Sequence(t, y[:, None], ("v",))


def test_bursts_are_told_from_regular_thinned_and_randomly_timed_series():
    rng = np.random.default_rng(0)
    grid = np.arange(2000.0) * 3600
    thinned = grid[rng.random(grid.size) < 0.6]
    random_times = np.sort(rng.uniform(0, 30 * DAY, 1500))
    for t in (grid, thinned, random_times):
        assert not bursty([Sequence(t, np.zeros(t.size), ("v",))])
    for every in (0.5, 1.0, 3.0):
        t = burst_times(rng, every, 60)
        assert bursty([Sequence(t, np.zeros(t.size), ("v",))])


def test_a_daily_cycle_read_in_bursts_at_odd_hours_is_found():
    # the grid's autocorrelation found periods of 0.06-0.15 days here, or none: each long lag spans a few pairs
    # of cells, all from the same few bursts
    for seed, every in enumerate((0.5, 1.0, 2.0, 3.0)):
        rng = np.random.default_rng(seed)
        found = detect_seasons([cycles(burst_times(rng, every, 60), 0.0, rng)], longest=20 * DAY)
        assert len(found) == 1 and abs(found[0] / DAY - 1) < 0.005, (every, found)


def test_a_week_over_a_day_in_bursts_is_found_and_neither_its_harmonics_nor_aliases_are():
    for seed, every in enumerate((1.0, 2.0, 4.0)):
        rng = np.random.default_rng(seed)
        found = detect_seasons([cycles(burst_times(rng, every, 180), 0.7, rng)], longest=40 * DAY)
        assert len(found) == 2, (every, found)
        assert abs(found[0] / DAY - 1) < 0.005 and abs(found[1] / (7 * DAY) - 1) < 0.01, (every, found)


def test_noise_and_a_trend_read_in_bursts_show_no_season():
    # the grid's autocorrelation found one or two seasons in every such series
    for seed in range(8):
        rng = np.random.default_rng(seed)
        t = burst_times(rng, 1.0 + seed % 3, 90)
        for y in (rng.normal(size=t.size), (t - T0) / DAY * 0.05 + rng.normal(size=t.size)):
            assert detect_seasons([Sequence(t, y[:, None], ("v",))], longest=30 * DAY) == ()


def test_seasons_are_found_on_a_long_series_read_every_minute():
    # a year a minute apart is 525,600 cells of the fine grid: the grid is coarsened to hold it, not skipped; the
    # week's own multiples are as strong as it, and five weeks by chance a little stronger must not hide it
    rng = np.random.default_rng(0)
    t = T0 + np.arange(0, 365 * DAY, 60.0) + rng.uniform(0, 5, 525_600)
    y = 20 + 3 * np.sin(2 * np.pi * t / DAY) + np.sin(2 * np.pi * t / (7 * DAY)) + 0.5 * rng.normal(size=t.size)
    found = detect_seasons([Sequence(t, y[:, None], ("v",))], longest=0.3 * 365 * DAY)
    assert len(found) == 2 and abs(found[0] / DAY - 1) < 0.001 and abs(found[1] / (7 * DAY) - 1) < 0.002, found


def test_the_periodogram_is_the_share_a_least_squares_sine_explains_beyond_a_line():
    rng = np.random.default_rng(0)
    channels = [np.sort(rng.uniform(0, 50.0, n)) for n in (40, 90)]
    values = [np.sin(t * 1.3) + 0.1 * t + rng.normal(size=t.size) for t in channels]
    frequencies = np.array([0.05, 0.2, 1.3 / (2 * np.pi), 0.7])
    plain = np.zeros(frequencies.size)
    for t, y in zip(channels, values, strict=True):
        line = np.stack([np.ones_like(t), t], axis=1)
        base = np.sum((y - line @ np.linalg.lstsq(line, y, rcond=None)[0]) ** 2)
        for i, f in enumerate(frequencies):
            x = np.column_stack([line, np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)])
            rest = np.sum((y - x @ np.linalg.lstsq(x, y, rcond=None)[0]) ** 2)
            plain[i] += t.size * (1 - rest / base)
    plain /= sum(t.size for t in channels)
    np.testing.assert_allclose(_power(channels, values, frequencies), plain, rtol=1e-9, atol=1e-12)
    assert int(np.argmax(plain)) == 2


def test_bursts_over_several_channels_with_gaps_and_a_constant_one_still_show_the_day():
    rng = np.random.default_rng(4)
    t = burst_times(rng, 1.0, 40)
    day = np.sin(2 * np.pi * t / DAY)
    x = np.stack([5 + day + 0.2 * rng.normal(size=t.size), np.full(t.size, 3.0), 2 - day], axis=1)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[np.all(np.isnan(x), axis=1), 0] = 5.0
    found = detect_seasons([Sequence(t, x, ("a", "flat", "b"))], longest=10 * DAY)
    assert len(found) == 1 and abs(found[0] / DAY - 1) < 0.005, found
    flat = Sequence(t, np.full((t.size, 1), 3.0), ("flat",))
    assert detect_seasons([flat], longest=10 * DAY) == ()


def test_a_constant_channel_beside_a_cycle_does_not_hide_it():
    # a constant's fitted phase is rounding noise, pointing anywhere: averaged in, it made the cycle's steadiness
    # a matter of chance
    misses = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        t = T0 + np.arange(0, 30 * DAY, 3600.0)[rng.random(720) < 0.6]
        x = np.stack([5 + np.sin(2 * np.pi * t / DAY) + 0.2 * rng.normal(size=t.size), np.full(t.size, 3.0)], 1)
        found = detect_seasons([Sequence(t, x, ("temp", "setpoint"))], longest=10 * DAY)
        misses += not any(abs(p / DAY - 1) < 0.005 for p in found)
    assert misses == 0


def test_bursts_further_apart_than_the_horizon_choose_the_component_on_the_next_burst():
    # bursts every 4 days against a 3-day horizon: every newest and history cut-off scores only the rest of its own
    # burst, where a trend through the last hour wins; the old choice was a trend and no season (0.9x the last
    # value's error over the next 3 days), or the day with a trend
    rng = np.random.default_rng(1)
    series = cycles(burst_times(rng, 4.0, 120), 0.0, rng)
    sizes = choose_sizes([series], ModelConfig(horizon=3 * DAY))
    assert len(sizes.seasons) == 1 and abs(sizes.seasons[0] / DAY - 1) < 0.005, sizes.seasons
    cuts, _, _ = cutoffs_of([series], sizes, np.random.default_rng(0))
    past = history_cutoffs([series], sizes)
    t = series.times
    assert max(t[c.future[-1]] - t[c.end] for c in cuts + past) < 3 * 3600  # none scores past its own burst
    far = far_cutoffs([series], sizes, [cuts, past])
    assert far and all(t[c.future[0]] - t[c.end] > 1.5 * DAY for c in far)
    assert all(t[c.future[-1]] - t[c.future[0]] <= 1.5 * DAY for c in far)  # the next burst, not the one after

    std = np.std(series.values, axis=0)
    chosen = choose_component([series], cuts, past, sizes, std)
    assert chosen.seasons == sizes.seasons and not chosen.trend, chosen
    at = t[-1] + np.arange(600.0, 3 * DAY, 600.0)
    truth = 5 + np.sin(2 * np.pi * at / DAY)
    classical = frame_of(chosen, t, series.values, SCALE_FLOOR * std).classical(at)[:, 0]
    assert np.abs(classical - truth).mean() < 0.2 * np.abs(series.values[-1, 0] - truth).mean()
    # the bands too: the newest and history cut-offs' residuals reach two hours ahead, and the model's forecasts
    # stop at its horizon, but where the network has no weight the forecast is the classical one, defined on the
    # next burst too, so those residuals give the last quarter its width (before, it borrowed the first quarter's
    # few and its 90% band held 0.5% of new readings over the 3 days)
    fitted = fit([series], ModelConfig(horizon=3 * DAY))
    carried = fitted.component_for(None)
    assert carried is not None and (carried.seasons, carried.trend) == (chosen.seasons, chosen.trend)
    assert not fitted.backtest["network_trained"] and fitted.calibration.counts[-1, 0] > 0
    assert fitted.backtest["calibrated_until_s"] == 3 * DAY
    readings = truth + 0.2 * np.random.default_rng(99).normal(size=at.size)
    band = forecast(fitted, series, at, seed=0).quantiles
    assert 0.8 <= np.mean((band[0, :, 0] <= readings) & (readings <= band[-1, :, 0])) <= 1.0

    # many such series: at most as many as the newest set holds, spread over all of them
    many = [cycles(burst_times(np.random.default_rng(k), 4.0, 120), 0.0, rng) for k in range(12)]
    sizes = choose_sizes(many, ModelConfig(horizon=3 * DAY, seasons=[]))
    cuts, _, _ = cutoffs_of(many, sizes, np.random.default_rng(0))
    spread = far_cutoffs(many, sizes, [cuts, history_cutoffs(many, sizes)])
    assert len(spread) == MAX_CUTOFFS < 12 * HISTORY_CUTOFFS and {c.series for c in spread} == set(range(12))

    # where the cut-offs reach the horizon's far part (regular readings), there are none
    regular = np.arange(0.0, 120 * DAY, 3600.0)
    steady = cycles(regular[rng.random(regular.size) < 0.6] + T0, 0.0, rng)
    sizes = choose_sizes([steady], ModelConfig(horizon=3 * DAY))
    cuts, _, _ = cutoffs_of([steady], sizes, np.random.default_rng(0))
    assert cuts and not far_cutoffs([steady], sizes, [cuts, history_cutoffs([steady], sizes)])


def test_seasons_are_found_where_they_are_and_not_in_a_random_walk():
    found = detect_seasons([seasonal(24 * 60, 0)], longest=20 * DAY)
    assert len(found) == 2
    np.testing.assert_allclose(sorted(found), [DAY, 7 * DAY], rtol=0.05)
    rng = np.random.default_rng(1)
    for _ in range(3):
        keep = rng.random(600) < 0.6
        walk = Sequence(np.arange(600.0)[keep], np.cumsum(rng.normal(size=600))[keep], ("v",))
        assert detect_seasons([walk], longest=200.0) == ()


def test_noise_on_a_short_series_shows_no_season():
    # 160 months of counts with no cycle, 60% kept: maxima of the autocorrelation stand 0.2 clear of the trough by
    # chance on every one of these series; they must also stand clear of what noise gives at their lag
    month = 365.2425 / 12 * DAY
    found = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = T0 + np.arange(160) * month
        kept = rng.random(t.size) < 0.6
        found.append(detect_seasons([Sequence(t[kept], rng.poisson(1.5, t.size)[kept, None] * 1.0, ("v",))],
                                    longest=60 * month))
    assert sum(bool(f) for f in found) <= 2, found


def wandering_cycle(seed: int, jump: float) -> Sequence:
    """40 years of monthly readings (60% kept) of a 4-year cycle whose phase turns by `jump` halfway."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(480) * YEAR / 12
    x = np.sin(2 * np.pi * (t - T0) / (4 * YEAR) + np.where(t > t[240], jump, 0.0)) + 0.3 * rng.normal(size=t.size)
    kept = rng.random(t.size) < 0.6
    return Sequence(t[kept], x[kept, None], ("v",))


def test_a_cycle_whose_phase_wanders_is_not_a_season():
    # a quasi-cycle (El Nino's) shows in the autocorrelation as a season does, but its shape in the older half of
    # the history disagrees with the newer half's: forecast as a season, it would put the peaks in the wrong place
    for seed in range(3):
        steady, wandering = wandering_cycle(seed, 0.0), wandering_cycle(seed, np.pi)
        assert any(abs(p / YEAR - 4) < 0.1 for p in detect_seasons([steady], longest=12 * YEAR))
        assert not any(abs(p / YEAR - 4) < 0.1 for p in detect_seasons([wandering], longest=12 * YEAR))
        assert steadiness([steady], 4 * YEAR) > 0.9 > -0.9 > steadiness([wandering], 4 * YEAR)
        assert steadiness([steady], 12 * YEAR) == 0.0  # 20 years a half: too short to show 12 years repeat


def test_channels_with_different_cycles_do_not_make_a_season_between_them():
    # two channels whose cycles differ by half (the README's example): averaged over channels, the autocorrelation
    # peaks between the two periods, at a cycle neither channel has
    rng = np.random.default_rng(0)
    t = T0 + np.cumsum(rng.uniform(30, 90, 2000))
    x = np.stack([21 + 2 * np.sin(t / 3600), 40 + 5 * np.cos(t / 5400)], axis=1)
    own = (2 * np.pi * 3600, 2 * np.pi * 5400)
    for p in detect_seasons([Sequence(t, x, ("temp", "hum"))], longest=float(np.ptp(t)) / 2.5):
        assert any(abs(p / q - 1) < 0.05 for q in own), p


def test_a_yearly_season_is_found_on_a_thinned_quarterly_series():
    # with 60% of the quarters kept, gaps of two quarters are common; filling them with a line (as an
    # interpolated grid does) flattens a four-quarter cycle, so the autocorrelation reads only the quarters seen
    found = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        quarter = 365.2425 / 4 * DAY
        t = T0 + np.arange(120) * quarter
        level = np.cumsum(rng.normal(0, 0.15, t.size))
        x = 10 + level + np.tile([1.0, -0.3, -1.2, 0.5], 30) + 0.2 * rng.normal(size=t.size)
        kept = rng.random(t.size) < 0.6
        found.append(detect_seasons([Sequence(t[kept], x[kept], ("v",))], longest=10 * 365 * DAY))
    for seasons in found:
        assert seasons and abs(seasons[0] / DAY - 365.2425) < 10, seasons


def test_a_season_is_measured_finer_than_the_grid_it_was_found_on():
    # on a monthly grid the autocorrelation puts a year at 12 steps of ~30.6 days (367 days); over 40 years that
    # error turns the phase by months, so the period is refined on the observations themselves
    series = monthly_climate(40, 0)
    found = detect_seasons([series], longest=15 * 365 * DAY)
    assert found, "the yearly cycle is found"
    assert abs(found[0] / DAY - 365.2425) < 0.5
    step = 30.6 * DAY
    assert abs(refine_period([series], 367.2 * DAY, step) / DAY - 365.2425) < 0.5
    assert refine_period([series], 367.2 * DAY, 0.01 * DAY) == pytest.approx(367.2 * DAY, abs=0.02 * DAY)


def sensor_days(seed: int, glitches: float = 0.0) -> Sequence:
    """30 days of a daily cycle read at 1,500 uniformly random times (gaps of seconds to hours), with noise, and
    a share `glitches` of the readings a hundred times the cycle's amplitude (a sensor's spikes)."""
    rng = np.random.default_rng(seed)
    t = np.sort(T0 + rng.uniform(0, 30 * DAY, 1500))
    x = 5 + np.sin(2 * np.pi * t / DAY) + 0.2 * rng.normal(size=t.size)
    x[rng.random(t.size) < glitches] = 500.0
    return Sequence(t, x[:, None], ("v",))


def test_a_season_is_measured_to_a_fraction_of_its_broad_peak_on_a_fine_grid():
    # random times put a fifth of the gaps under 7 minutes: a day is 220 grid steps, and noise moves the top of its
    # broad autocorrelation peak by a few of them; a period 1% off turns the cycle by a third over 30 days
    for seed in range(3):
        found = detect_seasons([sensor_days(seed)], longest=10 * DAY)
        assert found and abs(found[0] / DAY - 1) < 0.002, found


def test_a_few_sensor_glitches_do_not_hide_a_season():
    # one reading in a hundred at 500 (the cycle is 5 +- 1) outweighs the whole cycle in products and least squares
    for seed in range(3):
        found = detect_seasons([sensor_days(seed, glitches=0.01)], longest=10 * DAY)
        assert any(abs(p / DAY - 1) < 0.002 for p in found), found  # held at 5 deviations, glitches are still
        # noise, and can make a chance peak stand clear too: the backtest chooses among the seasons found


def test_glitches_are_held_and_ordinary_values_left_alone():
    rng = np.random.default_rng(0)
    normal = rng.normal(3.0, 2.0, 1000)
    np.testing.assert_array_equal(clipped(normal), normal)  # nothing beyond 5 robust deviations
    y = normal.copy()
    y[::100] = 1e6
    held = clipped(y)
    assert 3.0 + 4 * 2.0 < held.max() < 3.0 + 6 * 2.0
    np.testing.assert_array_equal(held[y < 1e6], y[y < 1e6])
    mostly_zero = np.where(np.arange(100) % 10 == 0, 4.0, 0.0)  # its median deviation is 0: nothing to scale by
    np.testing.assert_array_equal(clipped(mostly_zero), mostly_zero)

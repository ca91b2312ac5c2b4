"""Seasons found on data that comes in bursts, on long fine series, and the periodogram against a plain fit.

(Seasons on regular and randomly timed series: tests/model/test_local_frame.py.)"""

import numpy as np

from model import Sequence
from model.seasons import _power, bursty, detect_seasons

DAY = 86_400.0
T0 = 1.7e9


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

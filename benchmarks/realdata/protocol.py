"""The real-data protocol: thin a series, split it, score forecasts. Numpy only.

For one series and one seed (`thin`), with one `numpy.random.default_rng(seed)` drawn in this order:
1. a random 60% of the series' observed times are kept;
2. with several channels, each kept value is dropped (NaN) with probability 0.2; a time left with no value goes;
3. the first 80% of the series' time range (its first to last observed time, before thinning) is for training,
   the rest is the test span;
4. 20% of the training points are held out (never the first or last one, so the training range and the newest
   training point stay as they were): the interpolation targets. What remains is what every method sees.

Times are seconds throughout; values are (n, C) float64 with NaN = not observed. On several channels each
channel's errors are divided by its training std (`Split.scale`) and then averaged over channels; one channel keeps
its own units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PROTOCOL", "Series", "Split", "thin", "reach", "channel_errors", "band_counts", "interval_score",
           "spread_ratio", "linear_interpolation", "nearby", "newest"]

PROTOCOL = "realdata/2"  # part of every cache key: change it when the protocol, a baseline or a score changes
KEEP, DROP, TRAIN, HOLD = 0.6, 0.2, 0.8, 0.2


@dataclass(frozen=True, eq=False)
class Series:
    """One series of a data set on its native regular grid.

    times: (N,) float64 seconds, strictly increasing: every point of the grid (a month's start, a business day...);
    values: (N, C) float64, NaN where the source has no value; channels: C names;
    season: grid steps per season (12 monthly, 4 quarterly, 48 half-hourly), None where there is none.
    """

    dataset: str
    name: str
    times: np.ndarray
    values: np.ndarray
    channels: tuple[str, ...]
    season: int | None

    @property
    def step(self) -> float:
        """Mean grid step, seconds."""
        return float((self.times[-1] - self.times[0]) / (self.times.size - 1))


@dataclass(frozen=True, eq=False)
class Split:
    """One series thinned with one seed; times (n,) seconds, values (n, C).

    train_*: what the model and every baseline see; held_*: the training points held out (interpolation targets);
    test_*: the kept points after `cut` (seconds). horizon: seconds from the newest training point to the last
    test point. scale: (C,) each channel's training std (ones for a single channel): the unit of its errors.
    """

    train_t: np.ndarray
    train_x: np.ndarray
    held_t: np.ndarray
    held_x: np.ndarray
    test_t: np.ndarray
    test_x: np.ndarray
    cut: float
    horizon: float
    scale: np.ndarray


def thin(series: Series, seed: int) -> Split:
    """The protocol above applied to `series` with `default_rng(seed)`."""
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(~np.all(np.isnan(series.values), axis=1))
    kept = np.sort(rng.choice(rows, int(round(KEEP * rows.size)), replace=False))
    t, x = series.times[kept], series.values[kept].copy()
    if x.shape[1] > 1:
        x[rng.random(x.shape) < DROP] = np.nan
        some = ~np.all(np.isnan(x), axis=1)
        t, x = t[some], x[some]
    first, last = series.times[rows[0]], series.times[rows[-1]]
    cut = float(first + TRAIN * (last - first))
    train = np.flatnonzero(t <= cut)
    held = np.zeros(t.size, dtype=bool)
    held[rng.choice(train[1:-1], int(round(HOLD * train.size)), replace=False)] = True
    seen = (t <= cut) & ~held
    test = t > cut
    scale = np.ones(x.shape[1])
    if x.shape[1] > 1:
        std = np.nanstd(x[seen], axis=0)
        scale = np.where(std > 0, std, 1.0)
    return Split(train_t=t[seen], train_x=x[seen], held_t=t[held], held_x=x[held], test_t=t[test],
                 test_x=x[test], cut=cut, horizon=reach(t[seen][-1], t[test][-1]), scale=scale)


def reach(last: float, until: float) -> float:
    """Seconds from `last` to `until`, rounded up so that last + it >= until in float64 (Unix seconds are large:
    the plain difference can fall an ulp short, and a forecast at `until` would be out of the model's range)."""
    span = float(until - last)
    while last + span < until:
        span = float(np.nextafter(span, np.inf))
    return span


def channel_errors(pred: np.ndarray, truth: np.ndarray, scale: np.ndarray) -> tuple[float, float]:
    """(MAE, MSE) of pred against truth, both (Q, C) (NaN truth = not scored): per channel in units of scale (C,)
    (MSE in scale²), then the mean over channels with a scored point; NaN with no point to score."""
    maes, mses = [], []
    for c in range(truth.shape[1]):
        seen = np.isfinite(truth[:, c])
        if seen.any():
            err = (pred[seen, c] - truth[seen, c]) / scale[c]
            maes.append(np.mean(np.abs(err)))
            mses.append(np.mean(err**2))
    if not maes:
        return math.nan, math.nan
    return float(np.mean(maes)), float(np.mean(mses))


def band_counts(lower: np.ndarray, upper: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(points inside [lower, upper], points scored), all (Q, C): counts, so seeds pool by adding them."""
    seen = np.isfinite(truth)
    inside = (lower <= truth) & (truth <= upper) & seen
    return int(inside.sum()), int(seen.sum())


def interval_score(lower: np.ndarray, upper: np.ndarray, truth: np.ndarray, scale: np.ndarray,
                   alpha: float = 0.1) -> float:
    """The (1 - alpha) band's interval score (Gneiting & Raftery 2007), all (Q, C) but scale (C,): per point the
    band's width plus 2/alpha times the distance by which the truth falls outside it; per channel the mean over its
    scored points in units of scale, then the mean over channels (NaN with no point to score). Lower is better, and
    a band lowers it only by being narrow where it holds: coverage alone rewards a band wide enough to hold
    everything."""
    scores = []
    for c in range(truth.shape[1]):
        seen = np.isfinite(truth[:, c])
        if seen.any():
            lo, hi, y = lower[seen, c], upper[seen, c], truth[seen, c]
            miss = np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0)
            scores.append(np.mean(hi - lo + 2.0 / alpha * miss) / scale[c])
    return float(np.mean(scores)) if scores else math.nan


def spread_ratio(mean: np.ndarray, truth: np.ndarray) -> float:
    """std over the test points of a forecast's mean ÷ std of the truth there, per channel, then averaged: 0 for a
    flat forecast, about 1 for one that moves as much as the data."""
    ratios = []
    for c in range(truth.shape[1]):
        seen = np.isfinite(truth[:, c])
        if seen.sum() > 1 and np.std(truth[seen, c]) > 0:
            ratios.append(np.std(mean[seen, c]) / np.std(truth[seen, c]))
    return float(np.mean(ratios)) if ratios else float("nan")


def linear_interpolation(t: np.ndarray, x: np.ndarray, at: np.ndarray) -> np.ndarray:
    """(Q, C): numpy.interp per channel over that channel's observed points (t (n,) seconds, x (n, C))."""
    cols = []
    for c in range(x.shape[1]):
        seen = np.isfinite(x[:, c])
        cols.append(np.interp(at, t[seen], x[seen, c]))
    return np.stack(cols, axis=1)


def nearby(t: np.ndarray, at: float, half_width: float, minimum: int = 2) -> np.ndarray:
    """Indices (sorted) of the times in t (n,) sorted seconds within ±half_width of `at`; the `minimum` nearest
    ones where fewer fall inside."""
    inside = np.flatnonzero(np.abs(t - at) <= half_width)
    if inside.size >= minimum:
        return inside
    return np.sort(np.argsort(np.abs(t - at), kind="stable")[:minimum])


def newest(t: np.ndarray, seconds: float, minimum: int = 2) -> np.ndarray:
    """Indices of the context the service reads for a forecast of a stored series (service/forecasting): the times
    in t (n,) sorted seconds within `seconds` of the newest one, and the last one at or before that start (the
    service starts its read there, so that the oldest stretch has a point on each side); the `minimum` newest
    where fewer."""
    first = max(int(np.searchsorted(t, t[-1] - seconds, side="right")) - 1, 0)
    return np.arange(min(first, max(t.size - minimum, 0)), t.size)

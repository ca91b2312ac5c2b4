"""The local frame: each window seen relative to its own context.

A classical component (a level, optionally a damped trend, and Fourier terms of seasonal periods) is fitted by
weighted ridge least squares on each window's context alone; recent points weigh more (a half-life in seconds).
The latent ODE models what the component leaves, scaled by the context's own spread:

    x(t) = base(t) + scale * r(t),   base and scale from the context, r from the ODE,

or, for a channel whose values are all positive (`Component.log`), log x(t) = base(t) + scale * r(t): its level,
trend and seasons multiplicative, a growth a rate, a forecast that never falls below zero.

So a forecast starts at the level of the latest observations, carries the seasons the context shows, and the
network sees the same kind of numbers whatever the series' level or units (RevIN, Kim et al. 2022; the hybrid of
a classical part and a network is Smyl's ES-RNN, M4 2018). Which component (trend or not, which seasons, which
half-life) is chosen per model by backtesting the candidates on the training data (`model/local.py`).

Times here are float seconds; a window's context ends at `end` (its last observation).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, NotRequired, TypedDict

import numpy as np

from model.arrays import BoolArray, FloatArray, IntArray

if TYPE_CHECKING:
    from model.data import Sequence

__all__ = ["Component", "WindowFrame", "frame_of", "detect_seasons", "refine_period", "steadiness", "median_gap",
           "fine_gap", "harmonics", "frames_sharing_columns", "columns_key"]

RIDGE = 1e-4  # ridge weight on every column but the level, relative to the sum of the point weights
MAX_HARMONICS = 6  # Fourier pairs per season at most (fewer when the data is too sparse to show them)
ROBUST_ITERATIONS = 8  # reweighted least-squares passes of a robust fit
SCALE_FLOOR = 0.05  # a window's scale is at least this fraction of the training data's own std per channel
PRIOR_DOF = 16.0  # the weight of Component.unit_prior against a context's own residual spread, in residuals
MAX_LOG = 700.0  # exp of at most this on the log scale: a far band edge stays a finite number (e^709 overflows)


class ComponentData(TypedDict):
    """`Component.to_dict`'s JSON object; models saved before a field existed lack it (`from_dict`'s defaults)."""

    trend: bool
    seasons: list[float]
    harmonics: list[int]
    half_life: float
    damping: float
    context: float
    encoder: float
    blend: NotRequired[list[float]]
    persistence: NotRequired[float]
    linear_inside: NotRequired[bool]
    echo: NotRequired[float]
    robust: NotRequired[bool]
    log: NotRequired[list[bool]]
    residual_bands: NotRequired[bool]
    unit_prior: NotRequired[list[float]]
    weighted_unit: NotRequired[bool]
    nonnegative: NotRequired[list[bool]]


@dataclass(frozen=True)
class Component:
    """What the classical part holds and how far back each part looks. seasons: periods (s) with `harmonics`
    Fourier pairs each; trend: a slope fitted on the context, damped past its end over `damping` seconds;
    half_life: the age (s) at which a context point weighs half as much as the newest one; context: seconds of
    history the component is fitted on; encoder: seconds of it (the newest) the network's encoder reads.

    What the fit leaves (the residual) has a classical forecast too: inside the context, the residuals of the
    neighbouring observations linearly interpolated; after it, the last observation's residual fading with a
    half-life of `persistence` seconds (0: none), or, where `echo` is a period (s), the residual one such period
    before (as many periods back as reach the context: with a flat component, the seasonal naive forecast).
    blend: per channel, the weight of the network's forecast of the residual against that classical one after the
    context (chosen on the validation cut-offs: 1 = the network's alone, 0 = the classical alone; empty = 1 for
    every channel). linear_inside: between the context's observations the forecast is their linear interpolation
    (the residuals' interpolation less the component's curvature), chosen where it interpolates held-out points
    better than the component does. log: per channel, whether it is fitted on the log scale (its level, trend,
    seasons and residuals multiplicative) in a window whose values of it are all positive; empty = none.
    residual_bands: a band's width scales with the spread of what the component leaves in the context
    (WindowFrame.unit), not with the spread of the context's values; False only in models saved before it existed,
    whose bands were calibrated the older way. unit_prior: per channel, the typical context's residual spread on
    the fitted scale (over the cut-offs the bands are calibrated on), towards which each context's own is shrunk
    (frame_of); empty = no shrinking (models saved before it existed). weighted_unit: that spread weighs each
    residual as the fit weighs its point (by `half_life`); False only in models saved before it existed, whose
    bands were calibrated on the plain spread over the whole context. nonnegative: per channel, whether forecasts
    (means and band edges) are kept at or above zero: the training values of it were never negative and some were
    exactly zero (counts, amounts: `model.local.nonnegative_channels`); empty = none (models saved before it
    existed)."""

    trend: bool
    seasons: tuple[float, ...]
    harmonics: tuple[int, ...]
    half_life: float
    damping: float
    context: float
    encoder: float
    blend: tuple[float, ...] = ()
    persistence: float = 0.0
    linear_inside: bool = False
    echo: float = 0.0
    robust: bool = False
    log: tuple[bool, ...] = ()
    residual_bands: bool = True
    unit_prior: tuple[float, ...] = ()
    weighted_unit: bool = True
    nonnegative: tuple[bool, ...] = ()

    def to_dict(self) -> ComponentData:
        return {"trend": self.trend, "seasons": list(self.seasons), "harmonics": list(self.harmonics),
                "half_life": self.half_life, "damping": self.damping, "context": self.context,
                "encoder": self.encoder, "blend": list(self.blend), "persistence": self.persistence,
                "linear_inside": self.linear_inside, "echo": self.echo, "robust": self.robust, "log": list(self.log),
                "residual_bands": self.residual_bands, "unit_prior": list(self.unit_prior),
                "weighted_unit": self.weighted_unit, "nonnegative": list(self.nonnegative)}

    @classmethod
    def from_dict(cls, data: ComponentData) -> Component:
        return cls(trend=bool(data["trend"]), seasons=tuple(float(p) for p in data["seasons"]),
                   harmonics=tuple(int(k) for k in data["harmonics"]), half_life=float(data["half_life"]),
                   damping=float(data["damping"]), context=float(data["context"]), encoder=float(data["encoder"]),
                   blend=tuple(float(w) for w in data.get("blend", ())),
                   persistence=float(data.get("persistence", 0.0)),
                   linear_inside=bool(data.get("linear_inside", False)), echo=float(data.get("echo", 0.0)),
                   robust=bool(data.get("robust", False)), log=tuple(bool(v) for v in data.get("log", ())),
                   residual_bands=bool(data.get("residual_bands", False)),
                   unit_prior=tuple(float(v) for v in data.get("unit_prior", ())),
                   weighted_unit=bool(data.get("weighted_unit", False)),
                   nonnegative=tuple(bool(v) for v in data.get("nonnegative", ())))

    def logs(self, channels: int) -> BoolArray:
        """(C,) whether each channel is fitted on the log scale where its values allow."""
        return np.asarray(self.log, dtype=bool) if self.log else np.zeros(channels, dtype=bool)

    def weights(self, channels: int) -> FloatArray:
        """(C,) the blend per channel."""
        return np.asarray(self.blend, dtype=np.float64) if self.blend else np.ones(channels)

    def columns(self, times: FloatArray, end: float) -> FloatArray:
        """Design matrix (n, p) at `times` (s): level, trend (time since `end` in units of the context, damped past
        `end`), then sin/cos pairs of each season (phase from absolute time, so windows agree)."""
        cols = [np.ones_like(times)]
        if self.trend:
            ahead = times - end
            damped = self.damping * (1 - np.exp(-np.maximum(ahead, 0.0) / self.damping))
            cols.append(np.where(ahead > 0, damped, ahead) / self.context)
        for period, k in zip(self.seasons, self.harmonics, strict=True):
            phase = 2 * np.pi * np.remainder(times, period) / period
            for j in range(1, k + 1):
                cols += [np.sin(j * phase), np.cos(j * phase)]
        return np.stack(cols, axis=1)


@dataclass(frozen=True)
class WindowFrame:
    """One window's frame: coef (p, C) of the component, scale (C,), the end (s) of its context, the context's
    residuals (knot_t (n,) s, knot_r (n, C) in local units, NaN = not observed), logged (C,): the channels
    fitted on the log scale in this window (the component's, where the context's values are all positive), and
    unit (C,): the unit of a forecast band's width in local units (see frame_of).

    base, scale, coef and the residuals are on the fitted scale (the log of the values for a logged channel);
    classical, to_local and to_original take and give original units."""

    component: Component
    coef: FloatArray
    scale: FloatArray
    end: float
    knot_t: FloatArray
    knot_r: FloatArray
    logged: BoolArray
    unit: FloatArray

    def base(self, times: FloatArray) -> FloatArray:
        """(n, C) the classical component at `times` (s), on the fitted scale."""
        return self.component.columns(np.asarray(times, dtype=np.float64), self.end) @ self.coef

    def fitted_scale(self, values: FloatArray) -> FloatArray:
        """Values (..., C) in original units -> the fitted scale (a non-positive value of a logged channel: NaN);
        `values` itself where no channel is logged."""
        if not self.logged.any():
            return values
        out = np.array(values, dtype=np.float64)
        x = out[..., self.logged]
        out[..., self.logged] = np.log(np.where(x > 0, x, np.nan))
        return out

    def original(self, values: FloatArray) -> FloatArray:
        """Values (..., C) on the fitted scale -> original units; `values` itself where no channel is logged (this
        runs for every candidate at every cut-off of choose_component)."""
        if not self.logged.any():
            return values
        out = np.array(values, dtype=np.float64)
        out[..., self.logged] = np.exp(np.minimum(out[..., self.logged], MAX_LOG))
        return out

    def spread_to_original(self, local_std: FloatArray, mean: FloatArray) -> FloatArray:
        """A std (U, C) in local units around `mean` (U, C, original units) -> original units (on a logged channel
        to first order: the std on the log scale times the value)."""
        std = local_std * self.scale
        return np.where(self.logged, std * mean, std)

    def residual(self, times: FloatArray, after: Component | None = None) -> FloatArray:
        """(n, C) the classical forecast of the residual at `times`, local units: interpolated between the context's
        residuals up to its end; after it the last one fading (half-life component.persistence), or with an echo
        period P the residual whole periods back (at t - kP, the least k that reaches the channel's last one).
        after: the component whose persistence and echo say how it goes on past the context (default this frame's;
        model.backtest scores the candidates that differ only in those on one fit)."""
        times = np.asarray(times, dtype=np.float64)
        out = np.zeros((times.size, self.scale.size))
        after = after or self.component
        half_life = after.persistence
        base_at = self.base(times) if self.component.linear_inside else None  # the same for every channel
        for c in range(self.scale.size):
            seen = ~np.isnan(self.knot_r[:, c])
            if not seen.any():
                continue
            t, r = self.knot_t[seen], self.knot_r[seen, c]
            within = times <= t[-1]
            inside: FloatArray | None
            if not within.any():  # every time past the context: no interpolation inside it is read
                inside = None
            elif base_at is None:
                inside = np.interp(times, t, r)
            else:  # the values' own line between neighbours (in original units), in local units
                knots = self.base(t)[:, c] + r * self.scale[c]
                if self.logged[c]:  # knots: the logs of the observed values
                    line = np.log(np.interp(times, t, np.exp(knots)))
                else:
                    line = np.interp(times, t, knots)
                inside = (line - base_at[:, c]) / self.scale[c]
            if after.echo > 0:
                back = np.ceil(np.maximum(times - t[-1], 0.0) / after.echo) * after.echo
                later = np.interp(times - back, t, r)
            else:
                later = r[-1] * 0.5 ** (np.maximum(times - t[-1], 0.0) / half_life) if half_life > 0 else 0.0
            out[:, c] = later if inside is None else np.where(within, inside, later)
        return out

    def classical(self, times: FloatArray) -> FloatArray:
        """(n, C) the whole classical forecast at `times`, original units: the component and its residual's."""
        return self.original(self.base(times) + self.residual(times) * self.scale)

    def to_local(self, times: FloatArray, values: FloatArray) -> FloatArray:
        """Values (n, C) in original units -> what the network sees (NaN stays NaN)."""
        return (self.fitted_scale(values) - self.base(times)) / self.scale

    def to_original(self, times: FloatArray, local: FloatArray) -> FloatArray:
        """Network outputs (..., n, C) at `times` -> original units."""
        return self.original(self.base(times) + local * self.scale)


def frame_of(component: Component, times: FloatArray, values: FloatArray, floor: FloatArray) -> WindowFrame:
    """Fit `component` on one context: times (n,) s increasing, values (n, C) NaN = missing (points older than
    component.context before the last are left out); floor (C,): the least scale per channel, original units (on
    the log scale: the floor over the context's mean). A channel with no observation keeps base 0 and the floor as
    its scale. A channel the component logs is fitted on the log scale where all its values here are positive,
    else as it is (a forecast from a context with a zero in it still answers).

    The band unit (with component.residual_bands) is the residuals' standard deviation, n - p degrees of freedom
    for the p columns fitted, shrunk towards component.unit_prior (_band_unit; no less than the floor; the values'
    spread where n <= p and there is no prior): how far the values stray from the component, which is what a
    forecast's error grows from. The values' own spread (the scale) also
    holds the seasons and the trend the component forecasts, so bands standardised by it were wide where the
    context's season was strong and narrow where it was weak, whatever the errors."""
    end = float(times[-1])
    recent = times >= end - component.context
    times, values = times[recent], values[recent]
    return _fit(component, times, values, component.columns(times, end), floor, bands=True)


def frames_sharing_columns(components: list[Component], times: FloatArray, values: FloatArray,
                           floor: FloatArray) -> list[WindowFrame]:
    """frame_of for each of `components` on one context, where they differ only in how they weigh and fit the
    points (half_life, robust) and how the residual goes on after the context (persistence, echo): the context's
    points and the design matrix are taken once. For scoring candidates (model.backtest.candidate_errors):
    the frames' band units are left at 1, everything else is what frame_of gives, to the bit (a test holds them to
    it). Raises ValueError where the components' columns or contexts differ."""
    first = components[0]
    same = columns_key(first)
    if any(columns_key(c) != same for c in components):
        raise ValueError("frames_sharing_columns: the components differ in more than half_life, robust, "
                         "persistence and echo")
    end = float(times[-1])
    recent = times >= end - first.context
    times, values = times[recent], values[recent]
    design = first.columns(times, end)
    return [_fit(c, times, values.copy(), design, floor, bands=False) for c in components]


def columns_key(component: Component) -> Component:
    """What frames_sharing_columns requires its components to share: the component less how it weighs and fits the
    points and how the residual goes on after the context."""
    return dataclasses.replace(component, half_life=1.0, robust=False, persistence=0.0, echo=0.0)


def _fit(component: Component, times: FloatArray, values: FloatArray, design: FloatArray, floor: FloatArray,
         bands: bool) -> WindowFrame:
    """frame_of's fit on the context's points `times`, `values` (this function's own copy: a logged channel is
    replaced by its log in place) with their `design`; with `bands` False the band unit is left at 1."""
    end = float(times[-1])
    weights = 0.5 ** ((end - times) / component.half_life)
    channels = values.shape[1]
    coef = np.zeros((design.shape[1], channels))
    scale = np.array(floor, dtype=np.float64)
    wanted = component.logs(channels)  # the component's log scale; `logged`: this window's (all values positive)
    logged = wanted.copy()
    unit = np.ones(channels)
    for c in range(channels):
        seen = ~np.isnan(values[:, c])
        logged[c] &= bool(seen.any()) and bool(np.all(values[seen, c] > 0))
        if not seen.any():
            continue
        least = floor[c]
        if logged[c]:  # `values` is this function's own copy (the boolean index above)
            scale[c] = least = floor[c] / float(np.mean(values[seen, c]))  # the floor on the log scale
            values[seen, c] = np.log(values[seen, c])
        x, y, w = design[seen], values[seen, c], weights[seen]
        spread = float(np.std(y))
        coef[:, c] = _ridge_fit(x, y, w)
        if component.robust:  # least absolute deviations by reweighting: the fit an MAE asks for
            for _ in range(ROBUST_ITERATIONS):
                coef[:, c] = _ridge_fit(x, y, w / np.maximum(np.abs(y - x @ coef[:, c]), 1e-3 * (spread or 1.0)))
        if y.size > 1:
            scale[c] = max(spread, scale[c])
        if bands and component.residual_bands:
            prior = component.unit_prior[c] if component.unit_prior and logged[c] == wanted[c] else 0.0
            band = _band_unit(y - x @ coef[:, c], x.shape[1], prior, least,
                              w if component.weighted_unit else np.ones_like(w))
            if band is not None:  # else the unit stays the values' own spread
                unit[c] = band / scale[c]
    residuals = (values - design @ coef) / scale
    return WindowFrame(component, coef, scale, end, times, residuals, logged, unit)


def _band_unit(residuals: FloatArray, columns: int, prior: float, least: float, weights: FloatArray) -> float | None:
    """A context's band unit on the fitted scale: its residuals' standard deviation, each weighing as the fit
    weighed its point (`weights`), with `columns` degrees of freedom taken from their effective number
    (sum(w)^2 / sum(w^2)), shrunk towards `prior` (the typical context's, Component.unit_prior; 0 = none) as if
    that were measured on PRIOR_DOF more residuals; no less than `least`. None where there is neither (no residual
    freedom, no prior). With equal weights: the plain standard deviation with n - p degrees of freedom.

    A context's own spread, from a few residuals, is noisy: a smooth stretch gives a unit near zero, and the
    calibrated quantiles, which must cover the errors that follow such stretches, grew large enough to make every
    other band too wide. The shrunk spread (a moderated variance) follows a noisier context where it has the
    residuals to show it and stays near the typical one where it has not.

    The weights matter where the half-life is short beside the context: a fit that follows the newest days leaves
    large residuals far back that say nothing of its forecast's errors, and their share grows with the context's
    length, so a full context's plain spread was several times that of the shorter contexts early in a series
    whose errors the bands are calibrated on (half-hourly load: bands 13 times the error wide)."""
    total = float(weights.sum())
    count = total**2 / float(weights @ weights) if total > 0 else 0.0  # the effective number of residuals
    dof = count - columns
    squares = count * float(weights @ residuals**2) / total if dof > 0 else 0.0
    weight = PRIOR_DOF if prior > 0 else 0.0
    if dof <= 0 and weight == 0:
        return None
    return max(float(np.sqrt((squares + weight * prior**2) / (max(dof, 0) + weight))), least)


def _ridge_fit(x: FloatArray, y: FloatArray, w: FloatArray) -> FloatArray:
    """Coefficients (p,) of the weighted least squares of y (n,) on x (n, p), weights w (n,), with a ridge of RIDGE
    times the weights' sum on every column but the first (the level: almost none)."""
    weighted = x * w[:, None]
    total = w.sum()
    ridge = np.full(x.shape[1], RIDGE * total)
    ridge[0] = 1e-9 * total
    return np.asarray(np.linalg.solve(weighted.T @ x + np.diag(ridge), weighted.T @ y), dtype=np.float64)


def median_gap(sequences: list[Sequence]) -> float:
    """The median gap (s) between consecutive observation times, over all sequences."""
    gaps = np.concatenate([np.diff(s.times) for s in sequences if s.times.size > 1])
    return float(np.median(gaps)) if gaps.size else 1.0


FINE = 0.2  # fine_gap's quantile of the gaps


def fine_gap(sequences: list[Sequence], shortest: int = 2) -> float:
    """The FINE quantile of the gaps (s) between consecutive observation times, over the sequences with at least
    `shortest` times (1.0 where there are none): the spacing of the data's densest stretches. Where a fifth of the
    gaps are this short, a pattern this fine shows in the data (detect_seasons' grid; the Fourier pairs a season
    may carry besides those the median gap allows, backtest.candidates_of)."""
    gaps = [np.diff(s.times) for s in sequences if s.times.size >= max(shortest, 2)]
    return float(np.quantile(np.concatenate(gaps), FINE)) if gaps else 1.0


def detect_seasons(sequences: list[Sequence], longest: float, limit: int = 2) -> tuple[float, ...]:
    """Seasonal periods (s) the data shows, shortest first, each at most `longest` seconds.

    Each channel of each sequence is put on a regular grid (the fine gap, fine_gap): each observation in its
    nearest cell, cells without one left empty (not interpolated: filling a gap of two quarters with a line wipes
    out a yearly cycle on a quarterly series). Its linear trend is removed and its autocorrelation, each lag over
    the pairs of filled cells it spans, searched for local maxima that stand 0.2 above the lowest value
    at shorter lags (a random walk's autocorrelation falls smoothly and has none) and SEASON_Z times above the
    spread white noise gives at that lag (1 / sqrt(pairs) per channel, combined over channels and sequences as the
    autocorrelation is). On a short, noisy series chance maxima stand 0.2 clear easily, and a false season is not
    harmless: among hundreds of candidates scored on a few dozen cut-offs, one that carries it can win the backtest
    by chance and then forecast cycles that are not there. Peaks are taken shortest first;
    one at a multiple of a period already taken counts only when 3% stronger (a weekly cycle over a daily one, not
    the daily cycle's echo a week on). The autocorrelation is averaged over channels and sequences by length."""
    if not any(s.times.size > 2 for s in sequences):
        return ()
    step = fine_gap(sequences, shortest=3)
    max_lag = int(longest / step)
    if max_lag < 4:
        return ()
    total = np.zeros(max_lag + 1)
    noise = np.zeros(max_lag + 1)  # sum of weight² / pairs: the variance of the weighted mean under white noise
    weight = 0.0
    for s in sequences:
        cells = int(round((s.times[-1] - s.times[0]) / step)) + 1
        if cells < 3 * 4 or cells > 200_000:
            continue
        for c in range(s.values.shape[1]):
            seen, y = _seen(s.values[:, c])
            if seen.sum() < 8:
                continue
            found = _masked_acf(np.rint((s.times[seen] - s.times[0]) / step).astype(np.int64), y,
                                cells, min(max_lag, cells // 3))  # longer lags rest on too few pairs
            if found is None:
                continue
            acf, pairs = found
            total[: acf.size] += acf * seen.sum()
            noise[: acf.size] += np.where(pairs >= MIN_PAIRS, seen.sum() ** 2 / np.maximum(pairs, 1), 0.0)
            weight += seen.sum()
    if weight == 0:
        return ()
    acf = total / weight
    noise = np.sqrt(noise) / weight
    trough = np.minimum.accumulate(acf)
    # maxima over their neighbourhood (a twentieth of the lag each side: the gaps leave the autocorrelation
    # ragged, and one cycle must not show as two peaks a step apart) standing well clear of the lowest value before
    peaks = [lag for lag in range(2, max_lag)
             if acf[lag] > 0.1 and acf[lag] - trough[lag] > 0.2 and acf[lag] > SEASON_Z * noise[lag]
             and acf[lag] >= acf[max(1, lag - 1 - lag // 20):lag].max(initial=-np.inf)
             and acf[lag] > acf[lag + 1:lag + 2 + lag // 20].max(initial=-np.inf)]
    chosen: list[tuple[int, float, float]] = []  # (lag, its autocorrelation, the refined period in seconds)
    for lag in peaks:  # shortest first: a longer season must beat each shorter one it is a multiple of
        bases = [(p, a) for p, a, _ in chosen if _near_multiple(lag, p)]
        if any(acf[lag] < 1.03 * a for _, a in bases):
            continue  # an echo of a period already taken (2P, 3P, ...), not a season of its own
        if bases:  # a longer season over a shorter one: the strongest of the multiples (a week, not six days)
            lag = max((m for m in peaks if all(_near_multiple(m, p) for p, _ in bases)), key=lambda m: acf[m])
            if any(lag == p for p, _, _ in chosen):
                continue
        period = refine_period(sequences, lag * step, step, reach=1 + lag // 20)  # the peak's own neighbourhood
        if steadiness(sequences, period) < STEADY:
            continue  # a quasi-cycle (its phase wanders) or a period between two channels' cycles: not a season
        chosen.append((lag, float(acf[lag]), period))
        if len(chosen) == limit:
            break
    return tuple(period for _, _, period in chosen)


STEADY = 0.5  # detect_seasons: the cosine of a season's phase shift between the older and the newer half at least
STEADY_POINTS = 20_000  # observations (newest series first) steadiness reads at most


def steadiness(sequences: list[Sequence], period: float) -> float:
    """Whether a cycle of `period` seconds keeps its phase through each series' history: the cosine of the shift
    between its phase in the older half and in the newer half (each fitted by least squares, a sine and a cosine of
    the period beside a level and a line, on that half alone), averaged over channels and series by their
    observations. A season repeats in step throughout (near 1); an autocorrelation peak can also come from a
    quasi-cycle, whose phase wanders (El Niño's 4-8 years), or, averaged over channels, from a period between two
    channels' different cycles, and then the halves disagree. 0.0 where no series holds two periods in each half:
    a season must show that it repeats. One comparison per series: a period the data does not hold agrees by
    chance about one time in three, so this rules out what the autocorrelation alone lets through, not all of it."""
    total = weight = 0.0
    budget = STEADY_POINTS
    for s in sorted(sequences, key=lambda s: -s.times[-1]):
        if budget <= 0:
            break
        budget -= s.times.size
        for c in range(s.values.shape[1]):
            seen, y = _seen(s.values[:, c])
            t = s.times[seen]
            if t.size < 12:
                continue
            middle = (t[0] + t[-1]) / 2
            halves = [t <= middle, t > middle]
            if any(h.sum() < 6 or np.ptp(t[h]) < 2 * period for h in halves):
                continue
            phases = []
            for h in halves:
                th = t[h]
                angle = 2 * np.pi * np.remainder(th, period) / period
                design = np.column_stack([np.ones_like(th), (th - th[0]) / np.ptp(th), np.sin(angle), np.cos(angle)])
                phases.append(np.linalg.lstsq(design, y[h], rcond=None)[0][2:])
            older, newer = phases
            norm = float(np.linalg.norm(older) * np.linalg.norm(newer))
            total += (float(older @ newer) / norm if norm > 0 else 0.0) * t.size
            weight += t.size
    return total / weight if weight else 0.0


def _masked_acf(cell: IntArray, y: FloatArray, cells: int, lags: int) -> tuple[FloatArray, FloatArray] | None:
    """Autocorrelation (lags + 1,) of values `y` observed in grid cells `cell` (several in one cell: their mean)
    out of `cells`, its least-squares line removed; each lag averages the products over the pairs of filled cells
    it spans (a lag spanning fewer than MIN_PAIRS pairs: 0). Returned with those pair counts (lags + 1,); None
    when the values do not vary."""
    counts = np.bincount(cell, minlength=cells)
    filled = counts > 0
    where = np.flatnonzero(filled)
    mean = np.bincount(cell, weights=y, minlength=cells)[filled] / counts[filled]
    mean = mean - np.polyval(np.polyfit(where.astype(np.float64), mean, 1), where)
    variance = float(mean @ mean) / mean.size
    if variance <= 0:
        return None
    grid, mask = np.zeros(cells), filled.astype(np.float64)
    grid[where] = mean
    products = np.fft.irfft(np.abs(np.fft.rfft(grid, 2 * cells)) ** 2)[: lags + 1]
    pairs = np.rint(np.fft.irfft(np.abs(np.fft.rfft(mask, 2 * cells)) ** 2)[: lags + 1])
    return np.where(pairs >= MIN_PAIRS, products / np.maximum(pairs, 1) / variance, 0.0), pairs


MIN_PAIRS = 8  # _masked_acf: a lag needs this many pairs of filled cells
SEASON_Z = 3.0  # a season's autocorrelation is at least this many times what white noise gives at its lag: tens of
# lags are searched, and the largest of their chance values must stay below it on most series without a season


REFINE_STEPS = 101  # candidate periods tried around an autocorrelation peak, in each of REFINE_PASSES passes
REFINE_PASSES = 2  # each pass searches around the last one's best, over two of its spacings each side
REFINE_POINTS = 20_000  # points (newest first, over all sequences) the refinement reads at most


def refine_period(sequences: list[Sequence], period: float, step: float, reach: int = 1) -> float:
    """The period (s) within `reach` grid steps of `period` whose sine and cosine terms (up to 3 harmonics, as many
    as the grid resolves, with a level and a line) fit the observations best by least squares, summed over
    channels in units of each one's variance. (With harmonics finer than the grid a period aliases: on a quarterly
    grid, 3 harmonics of 273 days fit a yearly cycle as well as 365 days do.)

    The autocorrelation finds a season to the nearest grid step only (a year as 367 days on a monthly grid); over
    a long context that error turns the phase around (two days a year are three months in 45 years), so the
    component fitted on a long history would average the season away. Where the grid is much finer than the
    season (a day on a grid of minutes), its autocorrelation peak is broad and noise moves its top by several
    steps: detect_seasons searches the peak's whole neighbourhood (`reach`), then finer around the best."""
    terms = min(3, harmonics(period, step))
    lo, hi = period - reach * step, period + reach * step
    channels = _refine_channels(sequences, 1.5 * hi)
    best = period
    for _ in range(REFINE_PASSES):
        candidates = np.linspace(lo, hi, REFINE_STEPS)
        candidates = candidates[candidates > 2 * step]
        if candidates.size == 0 or not channels:
            return best
        gain = np.zeros(candidates.size)
        for t, y, line in channels:
            for i, p in enumerate(candidates):
                phase = 2 * np.pi * np.remainder(t, p) / p
                design = np.concatenate([line] + [np.stack([np.sin(j * phase), np.cos(j * phase)], axis=1)
                                                  for j in range(1, terms + 1)], axis=1)
                coef, *_ = np.linalg.lstsq(design, y, rcond=None)
                gain[i] -= float(np.sum((y - design @ coef) ** 2)) / t.size
        if not gain.any():  # constant channels: every period fits alike
            return best
        best = float(candidates[int(np.argmax(gain))])
        spacing = (hi - lo) / (REFINE_STEPS - 1)
        lo, hi = best - 2 * spacing, best + 2 * spacing
    return best


def _refine_channels(sequences: list[Sequence], span: float) -> list[tuple[FloatArray, FloatArray, FloatArray]]:
    """What refine_period fits, read once for all its passes: per channel of the newest series (REFINE_POINTS
    points at most, over a span of at least `span` s, 8 observed values at least), its observed times, their
    values clipped and standardised, and the level and line columns."""
    out = []
    budget = REFINE_POINTS
    for s in sorted(sequences, key=lambda s: -s.times[-1]):
        t_all = s.times[-budget:]
        if budget <= 0 or t_all.size < 8 or t_all[-1] - t_all[0] < span:
            continue
        budget -= t_all.size
        for c in range(s.values.shape[1]):
            seen, y = _seen(s.values[-t_all.size:, c])
            if seen.sum() < 8:
                continue
            t = t_all[seen]
            y = (y - y.mean()) / (y.std() or 1.0)
            out.append((t, y, np.stack([np.ones_like(t), (t - t[0]) / (t[-1] - t[0])], axis=1)))
    return out


CLIP_SIGMAS = 5.0  # _seen: how far from the median, in robust standard deviations, a value may lie


def clipped(y: FloatArray) -> FloatArray:
    """`y` held within CLIP_SIGMAS robust standard deviations (1.4826 x the median absolute deviation) of its
    median; as it is where that deviation is 0. Season finding reads values by products and least squares, where
    one sensor glitch a hundred times the signal outweighs a whole cycle; a cycle, a trend or ordinary noise lies
    within a few such deviations and is left as it is. Held at the bound, not left out: a cycle's own peaks can lie
    beyond it (lynx trappings, counts in bursts), and without them the cycle would not show."""
    median = float(np.median(y))
    mad = float(np.median(np.abs(y - median)))
    if mad <= 0:
        return y
    reach = CLIP_SIGMAS * 1.4826 * mad
    return np.clip(y, median - reach, median + reach)


def _seen(values: FloatArray) -> tuple[BoolArray, FloatArray]:
    """A channel's values as season finding reads them: which are observed, and those values clipped."""
    seen = ~np.isnan(values)
    return seen, clipped(values[seen]) if seen.any() else values[seen]


def _near_multiple(lag: int, period: int) -> bool:
    """Whether `lag` is about n * `period` (n >= 2): within a tenth of the period, plus n times the slack a peak
    of that period may have (a twentieth of it: a daily cycle found at 49 half-hours has its fifth at 239, not 245)."""
    ratio = lag / period
    n = round(ratio)
    return ratio > 1.5 and abs(lag - n * period) <= 0.1 * period + n * (period // 20)


def harmonics(period: float, gap: float) -> int:
    """Fourier pairs a season of `period` seconds can carry when points come every `gap` seconds (Nyquist)."""
    return int(max(1, min(MAX_HARMONICS, period // (2 * gap))))

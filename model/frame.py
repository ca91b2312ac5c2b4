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
from typing import NotRequired, TypedDict

import numpy as np

from model.arrays import BoolArray, FloatArray, evenly

__all__ = ["Component", "WindowFrame", "ChannelFrame", "frame_of", "frames_sharing_columns", "columns_key"]

RIDGE = 1e-4  # ridge weight on every column but the level, relative to the sum of the point weights
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
    channels: NotRequired[list[ComponentData]]


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
    existed). channels: per channel, the classical part chosen for that channel alone (its trend, seasons,
    half-lives, context, persistence, echo and fit; `part`), where the channels' own choices differ
    (`model.backtest.choose_component`); this component's own fields other than those (encoder, blend,
    linear_inside, log, the band fields, nonnegative) hold for every channel, and the rest are the choice made
    over all channels together; empty = this one for every channel (models saved before it existed)."""

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
    channels: tuple[Component, ...] = ()

    def to_dict(self) -> ComponentData:
        data: ComponentData = {"trend": self.trend, "seasons": list(self.seasons), "harmonics": list(self.harmonics),
                "half_life": self.half_life, "damping": self.damping, "context": self.context,
                "encoder": self.encoder, "blend": list(self.blend), "persistence": self.persistence,
                "linear_inside": self.linear_inside, "echo": self.echo, "robust": self.robust, "log": list(self.log),
                "residual_bands": self.residual_bands, "unit_prior": list(self.unit_prior),
                "weighted_unit": self.weighted_unit, "nonnegative": list(self.nonnegative)}
        if self.channels:  # absent otherwise, as in the models saved before it existed
            data["channels"] = [c.to_dict() for c in self.channels]
        return data

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
                   nonnegative=tuple(bool(v) for v in data.get("nonnegative", ())),
                   channels=tuple(cls.from_dict(c) for c in data.get("channels", ())))

    def part(self, channel: int) -> Component:
        """The one-channel component a channel's frame is fitted with where `channels` is set: that channel's
        classical part with this component's fields that hold for every channel (its own entry of those that are
        per channel)."""
        own = self.channels[channel]
        return dataclasses.replace(
            own, encoder=self.encoder, linear_inside=self.linear_inside, residual_bands=self.residual_bands,
            weighted_unit=self.weighted_unit, channels=(),
            blend=self.blend[channel:channel + 1], log=self.log[channel:channel + 1],
            unit_prior=self.unit_prior[channel:channel + 1], nonnegative=self.nonnegative[channel:channel + 1])

    @property
    def reach(self) -> float:
        """Seconds of history a frame of this component reads: its context, or with a part per channel the
        longest of theirs."""
        return max(c.context for c in self.channels) if self.channels else self.context

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

    def inside(self, linear: bool) -> WindowFrame:
        """This frame with the component's linear_inside set to `linear` (the fit does not depend on it)."""
        return dataclasses.replace(self, component=dataclasses.replace(self.component, linear_inside=linear))

    def classical(self, times: FloatArray) -> FloatArray:
        """(n, C) the whole classical forecast at `times`, original units: the component and its residual's."""
        return self.original(self.base(times) + self.residual(times) * self.scale)

    def to_local(self, times: FloatArray, values: FloatArray) -> FloatArray:
        """Values (n, C) in original units -> what the network sees (NaN stays NaN)."""
        return (self.fitted_scale(values) - self.base(times)) / self.scale

    def to_original(self, times: FloatArray, local: FloatArray) -> FloatArray:
        """Network outputs (..., n, C) at `times` -> original units."""
        return self.original(self.base(times) + local * self.scale)


@dataclass(frozen=True)
class ChannelFrame(WindowFrame):
    """A window's frame where each channel has a classical part of its own (Component.channels): `parts`, a
    one-channel WindowFrame per channel, each fitted with Component.part on the same context (the same end, each
    its own context's length of it). The inherited fields stitch theirs: knot_t is the longest part's times, a
    part's residuals NaN before its own context begins; coef is empty (0, C), each part holding its own. base and
    residual are the parts' side by side; everything else a WindowFrame does follows from those."""

    parts: tuple[WindowFrame, ...] = ()

    def base(self, times: FloatArray) -> FloatArray:
        return np.concatenate([p.base(times) for p in self.parts], axis=1)

    def residual(self, times: FloatArray, after: Component | None = None) -> FloatArray:
        if after is not None:
            raise ValueError("ChannelFrame.residual: `after` scores one component's variants on its fit; this frame "
                             "has a component per channel")
        return np.concatenate([p.residual(times) for p in self.parts], axis=1)

    def inside(self, linear: bool) -> WindowFrame:
        component = dataclasses.replace(self.component, linear_inside=linear)
        return dataclasses.replace(self, component=component, parts=tuple(p.inside(linear) for p in self.parts))


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
    context's season was strong and narrow where it was weak, whatever the errors.

    A component with a part per channel (Component.channels) gives a ChannelFrame: each channel fitted with its
    own part."""
    if component.channels:
        return _channel_frame(component, times, values, floor)
    end = float(times[-1])
    recent = times >= end - component.context
    times, values = times[recent], values[recent]
    return _fit(component, times, values, component.columns(times, end), floor, bands=True)


def _channel_frame(component: Component, times: FloatArray, values: FloatArray, floor: FloatArray) -> ChannelFrame:
    """frame_of for a component with a part per channel."""
    channels = values.shape[1]
    if len(component.channels) != channels:
        raise ValueError(f"frame_of: the component has parts for {len(component.channels)} channels, the values "
                         f"have {channels}")
    parts = tuple(frame_of(component.part(c), times, values[:, c:c + 1], floor[c:c + 1]) for c in range(channels))
    knot_t = max((p.knot_t for p in parts), key=len)  # each part's times are a suffix of the context's
    knot_r = np.full((knot_t.size, channels), np.nan)
    for c, p in enumerate(parts):
        knot_r[knot_t.size - p.knot_t.size:, c] = p.knot_r[:, 0]
    return ChannelFrame(component, np.zeros((0, channels)), np.concatenate([p.scale for p in parts]),
                        float(times[-1]), knot_t, knot_r, np.concatenate([p.logged for p in parts]),
                        np.concatenate([p.unit for p in parts]), parts)


def frames_sharing_columns(components: list[Component], times: FloatArray, values: FloatArray,
                           floor: FloatArray) -> list[WindowFrame]:
    """frame_of for each of `components` on one context, where they differ only in how they weigh and fit the
    points (half_life, robust) and how the residual goes on after the context (persistence, echo): the context's
    points and the design matrix are taken once. For scoring candidates (model.backtest.candidate_errors):
    the frames' band units are left at 1, everything else is what frame_of gives, to the bit (a test holds them to
    it). Raises ValueError where the components' columns or contexts differ."""
    if any(c.channels for c in components):
        raise ValueError("frames_sharing_columns: a component with a part per channel is fitted by frame_of")
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
    replaced by its log in place) with their `design`; with `bands` False the band unit is left at 1. The
    component is fitted on at most CONTEXT_POINTS of the points (_sample), its residuals taken at all of them."""
    end = float(times[-1])
    weights = 0.5 ** ((end - times) / component.half_life)
    channels = values.shape[1]
    coef = np.zeros((design.shape[1], channels))
    scale = np.array(floor, dtype=np.float64)
    sample = _sample(times.size)
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
        fitted = seen & sample
        x, y, w = design[fitted], values[fitted, c], weights[fitted]
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


CONTEXT_POINTS = 4096  # a context's component is fitted on this many of its points at most


def _sample(points: int) -> BoolArray:
    """(points,) which of a context's points its component is fitted on: all of them, or CONTEXT_POINTS spread
    evenly by index (the last always among them). Each least-squares fit reads every point fitted, and the backtest
    fits over a thousand candidates on hundreds of contexts: on a year of readings a minute apart (contexts of
    25,000-500,000 points) choosing the component took over ten minutes. Spread evenly, the points keep their
    spread in time and their weights relative to each other (the half-life): the same least squares on a sample
    as fine as a reading every few minutes over weeks. The residuals are still taken at every point, so a query
    between two readings is answered from those two. Every benchmark series has fewer points than this."""
    sample = np.zeros(points, dtype=bool)
    sample[evenly(points, CONTEXT_POINTS)] = True
    return sample


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

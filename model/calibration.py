"""Predictive bands calibrated on held-out windows (split-conformal style), per channel and horizon band.

The model's own spread (z0 posterior samples plus the fixed `obs_std`) says how unsure the encoder is, not how
wrong the model tends to be, so its bands alone cover far less than they claim. After training, `calibrate`
forecasts held-out windows and records, per band and channel, the empirical quantiles of the standardised
residual r = (truth - mean) / spread, symmetrised: the quantiles of ±|r|. A forecast then answers quantile q with
mean + spread * Q_band(q) and std with spread * rms(r): bands cover what they claim on data like the held-out
windows, whatever the size of the residuals' tails.

The residuals' signs are left out (the band is the split-conformal one on |r|, centred on the mean) because on
real series they say where the history went, not where the future goes: on a falling series whose fall slowed,
every held-out forecast overshot it, and bands shaped by those residuals lay wholly below the mean, missing
every later value once the series turned or held.

Bands, by model time past the context's last observation: 0 = at or before it (interpolation), then the four
quarters of the horizon (later times use the last).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from model.arrays import BoolArray, FloatArray, IntArray
from model.data import Example

__all__ = ["Calibration", "LEVELS", "BANDS", "MIN_RESIDUALS", "hide_context_points"]

LEVELS = np.linspace(0.0, 1.0, 201)  # quantile levels stored per band and channel
BANDS = 5  # interpolation + four quarters of the horizon
MIN_RESIDUALS = 30  # fewer residuals in a band: use the channel's pooled quantiles (or the standard normal's)
FEW = 3  # _few reads the size of fewer residuals than MIN_RESIDUALS from at least this many
HIDE = 0.2  # calibration windows hide this fraction of their context's inner points: interpolation targets


class CalibrationData(TypedDict):
    """`Calibration.to_dict`'s JSON object: the arrays as nested lists."""

    edges: list[float]
    quantiles: list[list[list[float]]]
    scale: list[list[float]]
    counts: list[list[int]]


@dataclass(frozen=True)
class Calibration:
    """edges: (BANDS - 1,) model-time offsets past the context's last time separating the bands.
    quantiles: (BANDS, len(LEVELS), C) standardised-residual quantiles; scale: (BANDS, C) their std;
    counts: (BANDS, C) residuals behind each band."""

    edges: FloatArray
    quantiles: FloatArray
    scale: FloatArray
    counts: IntArray

    @classmethod
    def from_residuals(cls, offsets: FloatArray, residuals: FloatArray, horizon: float,
                       fallback: FloatArray | None = None) -> Calibration:
        """offsets (N,) model time past each point's context end; residuals (N, C) standardised, NaN = none;
        fallback (C,): where a channel has too few residuals anywhere, the std of the normal whose quantiles stand
        in (default 1: the spread they are standardised by is itself a predictive std; the local frame's is the
        fixed obs_std times the window's band unit, so there 1 / obs_std, which makes the band the unit's width
        rather than a hundredth of it), unless the few residuals there are say the errors are larger (_few)."""
        edges = horizon * np.arange(BANDS - 1) / (BANDS - 1)
        band = band_of(edges, offsets)
        channels = residuals.shape[1]
        quantiles = np.empty((BANDS, LEVELS.size, channels))
        scale = np.empty((BANDS, channels))
        counts = np.zeros((BANDS, channels), dtype=np.int64)
        for c in range(channels):
            finite = np.isfinite(residuals[:, c])
            counts[:, c] = np.bincount(band[finite], minlength=BANDS)
            few = None  # the band of a channel with too few residuals in all (_few), made where one needs it
            for b in range(BANDS):
                # too few in the band: its neighbours' too, nearest first (later ones first at equal distance, so
                # that the errors' growth with the horizon is not averaged away)
                near = sorted(range(BANDS), key=lambda n: (abs(n - b), -n))
                taken = next((near[:k] for k in range(1, BANDS + 1) if counts[near[:k], c].sum() >= MIN_RESIDUALS),
                             None)
                if taken is None:
                    few = few or _few(residuals[finite, c], 1.0 if fallback is None else float(fallback[c]))
                    quantiles[b, :, c], scale[b, c] = few
                    continue
                size = np.abs(residuals[finite & np.isin(band, taken), c])
                r = np.concatenate([-size, size])  # the residuals' sizes, their signs left out
                quantiles[b, :, c], scale[b, c] = np.quantile(r, LEVELS), r.std()
        return cls(edges=edges, quantiles=quantiles, scale=np.maximum(scale, 1e-6), counts=counts)

    def checked_until(self, horizon: float) -> float:
        """How far past the last observation (in `horizon`'s units) the residuals behind these bands reach: the end
        of the last quarter of the horizon with any residual of its own, 0 with none. Past it every band borrows its
        width from nearer forecasts (from_residuals), so it may be too narrow there."""
        own = np.flatnonzero(self.counts[1:].sum(axis=1) > 0)
        return horizon * (int(own[-1]) + 1) / (BANDS - 1) if own.size else 0.0

    def bands(self, offsets: FloatArray) -> IntArray:
        return band_of(self.edges, offsets)

    def table(self, levels: FloatArray) -> FloatArray:
        """(BANDS, C, K): each band's and channel's standardised-residual quantile at each of `levels` (K,)."""
        return np.stack([[np.interp(levels, LEVELS, self.quantiles[b, :, c]) for c in range(self.quantiles.shape[2])]
                         for b in range(BANDS)])

    def to_dict(self) -> CalibrationData:
        return {"edges": self.edges.tolist(), "quantiles": self.quantiles.tolist(), "scale": self.scale.tolist(),
                "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: CalibrationData) -> Calibration:
        return cls(edges=np.asarray(data["edges"], dtype=np.float64),
                   quantiles=np.asarray(data["quantiles"], dtype=np.float64),
                   scale=np.asarray(data["scale"], dtype=np.float64),
                   counts=np.asarray(data["counts"], dtype=np.int64))


def band_of(edges: FloatArray, offsets: FloatArray) -> IntArray:
    """Band index per offset: 0 for offset <= 0, then 1 + the horizon quarter it falls in (capped)."""
    return np.minimum(np.searchsorted(edges, offsets, side="left"), BANDS - 1)


def hide_context_points(example: Example, rng: np.random.Generator) -> tuple[Example, BoolArray]:
    """The example with HIDE of its context's inner points taken from the encoder, and a mask over its target
    times of the points a residual may come from: the hidden ones and every point after the context."""
    n = example.ctx_t.size
    hidden = np.zeros(n, dtype=bool)
    if n > 2:
        inner = np.arange(1, n - 1)
        hidden[rng.choice(inner, max(1, int(HIDE * n)), replace=False)] = True
    scored = example.tgt_t > example.ctx_t[-1]
    scored |= np.isin(example.tgt_t, example.ctx_t[hidden])
    shown = Example(ctx_t=example.ctx_t[~hidden], ctx_x=example.ctx_x[~hidden], tgt_t=example.tgt_t,
                    tgt_x=example.tgt_x)
    return shown, scored


def _few(residuals: FloatArray, wide: float) -> tuple[FloatArray, float]:
    """A channel's quantiles at LEVELS and their std from fewer than MIN_RESIDUALS residuals in all: Student's t
    with as many degrees of freedom as there are residuals, scaled by the std their median size implies (the
    median of |residual| over the normal's, 0.674) where that is above `wide` (from_residuals' fallback), else the
    normal of std `wide` (also with fewer than FEW residuals).

    A dozen residuals cannot give a 5% quantile, but they do say how large the errors are: where they are larger
    than the spread the forecast claims (a channel read rarely, forecast by its last reading, misses by that
    reading's noise as well as the next one's), a band of that spread held 56-69% of later values. The median,
    not the root mean square: one residual of a context whose spread came out near zero can be a hundred times
    the rest. The t's wider tails stand for how little a dozen residuals say about that size."""
    from scipy.stats import norm, t

    size = float(np.median(np.abs(residuals)) / norm.ppf(0.75)) if residuals.size >= FEW else 0.0
    if size <= wide:
        return _normal_quantiles() * wide, wide
    inner = t.ppf(LEVELS[1:-1], df=residuals.size)
    return np.concatenate([[inner[0] - 1.0], inner, [inner[-1] + 1.0]]) * size, float(t.std(df=residuals.size)) * size


def _normal_quantiles() -> FloatArray:
    from scipy.stats import norm

    inner = norm.ppf(LEVELS[1:-1])
    return np.concatenate([[inner[0] - 1.0], inner, [inner[-1] + 1.0]])

"""Baselines with `forecast`'s signature and result shape: last observation carried forward, linear
interpolation, and a Gaussian process (scikit-learn), each per channel on the context alone.

LOCF and linear interpolation have no uncertainty: std 0 and every quantile equal to the mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from scipy.stats import norm as normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from model.arrays import FloatArray
from model.data import Sequence
from model.errors import InputError
from model.predict import Forecast

__all__ = ["locf_forecast", "linear_forecast", "gp_forecast"]


def _columns(context: Sequence, channels: tuple[str, ...]) -> Iterator[tuple[FloatArray, FloatArray]]:
    ctx = context.select(channels)
    for c in range(len(channels)):
        seen = ~np.isnan(ctx.values[:, c])
        if not seen.any():
            raise InputError(f"context never observes channel {channels[c]!r}")
        yield ctx.times[seen], ctx.values[seen, c]


def _point(at: FloatArray, mean: FloatArray, channels: tuple[str, ...], levels: Iterable[float]) -> Forecast:
    levels = np.sort(np.asarray(list(levels), dtype=np.float64))
    return Forecast(times=at, mean=mean, std=np.zeros_like(mean), quantiles=np.repeat(mean[None], levels.size, 0),
                    quantile_levels=levels, channels=channels)


def locf_forecast(context: Sequence, at: object, channels: tuple[str, ...] | None = None, *,
                  quantiles: Iterable[float] = (0.05, 0.5, 0.95)) -> Forecast:
    """Each channel's latest observation at or before each time (its first observation before that)."""
    channels = context.channels if channels is None else channels
    at = np.atleast_1d(np.asarray(at, dtype=np.float64))
    cols = []
    for t, v in _columns(context, channels):
        cols.append(v[np.clip(np.searchsorted(t, at, side="right") - 1, 0, None)])
    return _point(at, np.stack(cols, axis=1), channels, quantiles)


def linear_forecast(context: Sequence, at: object, channels: tuple[str, ...] | None = None, *,
                    quantiles: Iterable[float] = (0.05, 0.5, 0.95)) -> Forecast:
    """Linear interpolation between observations; held constant beyond the first and last one."""
    channels = context.channels if channels is None else channels
    at = np.atleast_1d(np.asarray(at, dtype=np.float64))
    cols = [np.interp(at, t, v) for t, v in _columns(context, channels)]
    return _point(at, np.stack(cols, axis=1), channels, quantiles)


def gp_forecast(context: Sequence, at: object, channels: tuple[str, ...] | None = None, *,
                quantiles: Iterable[float] = (0.05, 0.5, 0.95)) -> Forecast:
    """A GP per channel (constant x RBF + white noise, hyper-parameters by marginal likelihood)."""
    import warnings

    channels = context.channels if channels is None else channels
    at = np.atleast_1d(np.asarray(at, dtype=np.float64))
    levels = np.sort(np.asarray(list(quantiles), dtype=np.float64))
    means, stds = [], []
    for t, v in _columns(context, channels):
        origin, span = t[0], max(t[-1] - t[0], 1e-9)
        kernel = ConstantKernel(1.0) * RBF(length_scale=0.2, length_scale_bounds=(1e-3, 1e3)) + WhiteKernel(1e-2)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=1, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(((t - origin) / span)[:, None], v)
        m, s = gp.predict(((at - origin) / span)[:, None], return_std=True)
        means.append(m)
        stds.append(s)
    mean, std = np.stack(means, axis=1), np.stack(stds, axis=1)
    q = mean[None] + normal.ppf(levels)[:, None, None] * std[None]
    return Forecast(times=at, mean=mean, std=std, quantiles=q, quantile_levels=levels, channels=channels)

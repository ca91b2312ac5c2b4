"""Forecast baselines on the irregular training points, one channel at a time.

Each baseline takes (t (n,) seconds, y (n,) observed values, at (Q,) seconds to forecast, series: the `Series`,
for its native grid and season) and returns (mean (Q,), std (Q,) or None). `BASELINES` names them in table order;
`run` applies one to every channel of a split. ETS and ARIMA see the points linearly interpolated back onto the
native grid over the training range and are read on that grid (between grid points, linearly); statsmodels is
imported inside them, so the rest of this module needs only numpy and scikit-learn.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np

from benchmarks.realdata.protocol import Series, Split

__all__ = ["BASELINES", "GP_POINTS", "run"]

GP_POINTS = 1000  # the GP sees at most the newest this many points (its fit is cubic in them)
Baseline = Callable[[np.ndarray, np.ndarray, np.ndarray, Series], tuple[np.ndarray, "np.ndarray | None"]]


def last_value(t, y, at, series):
    """The newest training value, everywhere."""
    return np.full(at.shape, y[-1]), None


def drift(t, y, at, series):
    """A least-squares line through the newest 5 points, extrapolated."""
    origin = t[-1]
    slope, level = np.polyfit(t[-5:] - origin, y[-5:], 1)
    return level + slope * (at - origin), None


def _position(series: Series, t: np.ndarray) -> np.ndarray:
    """Fractional grid index of times t (seconds): whole numbers on the grid."""
    return np.interp(t, series.times, np.arange(series.times.size, dtype=np.float64))


def seasonal_naive(t, y, at, series):
    """At each time, the training points interpolated one season back, or k seasons for the smallest k that lands
    inside the training range. Seasons are counted in grid steps, so a month is a month."""
    first, last = _position(series, t[[0, -1]])
    here = _position(series, at)
    back = here - np.maximum(np.ceil((here - last) / series.season), 1) * series.season
    if np.any(back < first):
        raise ValueError(f"the training range ({last - first:.0f} steps) is shorter than a season "
                         f"({series.season} steps)")
    return np.interp(np.interp(back, np.arange(series.times.size), series.times), t, y), None


def gp(t, y, at, series):
    """A GP (constant x RBF + constant x ExpSineSquared at the native season + white noise, normalize_y, 2
    restarts) on the newest GP_POINTS points, time in grid steps; its predictive std includes the noise."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, ExpSineSquared, WhiteKernel

    t, y = t[-GP_POINTS:], y[-GP_POINTS:]
    x = (t - t[-1]) / series.step
    span = max(float(-x[0]), 1.0)
    kernel = ConstantKernel() * RBF(length_scale=span / 10, length_scale_bounds=(1e-2, 1e2 * span))
    if series.season is not None:
        kernel += ConstantKernel() * ExpSineSquared(length_scale=1.0, periodicity=float(series.season),
                                                    periodicity_bounds="fixed")
    kernel += WhiteKernel(noise_level=0.1)
    model = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[:, None], y)
    mean, std = model.predict(((at - t[-1]) / series.step)[:, None], return_std=True)
    return mean, std


def _on_grid(t: np.ndarray, y: np.ndarray, series: Series) -> tuple[np.ndarray, int]:
    """The training points linearly interpolated onto the grid points of their range: (values (m,), index of the
    last grid point used)."""
    inside = np.flatnonzero((series.times >= t[0]) & (series.times <= t[-1]))
    return np.interp(series.times[inside], t, y), int(inside[-1])


def _read_forecast(fitted_forecast: Callable[[int], np.ndarray], last: int, at: np.ndarray,
                   series: Series) -> np.ndarray:
    """A grid model's forecast read at times `at`: `fitted_forecast(h)` gives steps last+1 .. last+h."""
    here = _position(series, at)
    steps = int(np.ceil(here.max() - last))
    return np.interp(here, last + np.arange(1, steps + 1), np.asarray(fitted_forecast(steps)))


def ets(t, y, at, series):
    """statsmodels ExponentialSmoothing: damped additive trend, additive season where there is one."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    values, last = _on_grid(t, y, series)
    seasonal = {} if series.season is None else {"seasonal": "add", "seasonal_periods": series.season}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; a failed fit raises
        fitted = ExponentialSmoothing(values, trend="add", damped_trend=True, initialization_method="estimated",
                                      **seasonal).fit()
        return _read_forecast(fitted.forecast, last, at, series), None


def arima(t, y, at, series):
    """statsmodels ARIMA (1,1,1), with seasonal order (1,0,0,season) where there is a season."""
    from statsmodels.tsa.arima.model import ARIMA

    values, last = _on_grid(t, y, series)
    seasonal = (0, 0, 0, 0) if series.season is None else (1, 0, 0, series.season)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ARIMA(values, order=(1, 1, 1), seasonal_order=seasonal).fit()
        return _read_forecast(fitted.forecast, last, at, series), None


BASELINES: dict[str, Baseline] = {
    "last value": last_value, "drift": drift, "seasonal naive": seasonal_naive, "GP": gp, "ETS": ets,
    "ARIMA": arima,
}


def run(name: str, split: Split, series: Series) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Baseline `name` on every channel of `split`: (mean (Q, C), std (Q, C) or None, seconds taken). Raises
    whatever the baseline raises, and ValueError for a non-finite forecast."""
    started = time.perf_counter()
    means, stds = [], []
    for c in range(split.train_x.shape[1]):
        seen = np.isfinite(split.train_x[:, c])
        mean, std = BASELINES[name](split.train_t[seen], split.train_x[seen, c], split.test_t, series)
        means.append(mean)
        stds.append(std)
    mean = np.stack(means, axis=1)
    if not np.all(np.isfinite(mean)):
        raise ValueError(f"{name} forecast a non-finite value")
    std = None if stds[0] is None else np.stack(stds, axis=1)
    return mean, std, time.perf_counter() - started

"""Scores of every method on one split: the baselines, linear interpolation, and a fitted model.

A method's scores are a dict: mae, mse (see protocol.channel_errors for units), spread (protocol.spread_ratio),
seconds (a baseline's fit and forecast, summed over channels; the model's fit alone), and where the method has a
90% band, inside/total (points in it / points scored) and interval (its interval score,
protocol.interval_score). A method that raised has {"failed": message} instead.
"""

from __future__ import annotations

import inspect
import time

import numpy as np

import model
from benchmarks.realdata import baselines
from benchmarks.realdata.protocol import (
    Series,
    Split,
    band_counts,
    channel_errors,
    interval_score,
    linear_interpolation,
    nearby,
    newest,
    spread_ratio,
)

__all__ = ["score", "baseline_scores", "fit_model", "model_scores", "MODEL_METHODS", "INTERP_BATCH", "SCORING"]

MODEL_METHODS = ("model", "classical", "panel")  # the rest are baselines
SCORING = "service-context/1"  # part of the model's cache key: change it when the model's scoring changes
INTERP_BATCH = 256  # interpolation queries per forecast_batch call (memory: queries x samples trajectories)
Z90 = 1.6448536269514722  # a normal's 95% quantile: mean ± Z90 std is a 90% band


def score(mean: np.ndarray, split: Split, lower: np.ndarray | None = None,
          upper: np.ndarray | None = None) -> dict:
    """Scores of a forecast mean (Q, C) at split.test_t, with its 90% band (lower, upper (Q, C)) if any."""
    mae, mse = channel_errors(mean, split.test_x, split.scale)
    out = {"mae": mae, "mse": mse, "spread": spread_ratio(mean, split.test_x)}
    if lower is not None:
        out["inside"], out["total"] = band_counts(lower, upper, split.test_x)
        out["interval"] = interval_score(lower, upper, split.test_x, split.scale)
    return out


def baseline_scores(series: Series, split: Split) -> dict[str, dict]:
    """Every baseline that applies (seasonal naive needs a season) and linear interpolation's held-out MSE."""
    out = {}
    for name in baselines.BASELINES:
        if name == "seasonal naive" and series.season is None:
            continue
        try:
            mean, std, seconds = baselines.run(name, split, series)
        except Exception as error:  # noqa: BLE001 (a baseline failing on a series is a result, not a crash)
            out[name] = {"failed": f"{type(error).__name__}: {error}"}
            continue
        band = () if std is None else (mean - Z90 * std, mean + Z90 * std)
        out[name] = {**score(mean, split, *band), "seconds": seconds}
    held = linear_interpolation(split.train_t, split.train_x, split.held_t)
    out["linear interpolation"] = {"interp_mse": channel_errors(held, split.held_x, split.scale)[1]}
    return out


def fit_model(sequences: list[model.Sequence], config: model.ModelConfig) -> tuple[model.FittedModel, float]:
    """(the fitted model, seconds the fit took)."""
    started = time.perf_counter()
    fitted = model.fit(sequences, config)
    return fitted, time.perf_counter() - started


def has_classical() -> bool:
    """Whether model.forecast takes part="classical" (the local frame's classical component alone)."""
    return "part" in inspect.signature(model.forecast).parameters


def model_scores(fitted: model.FittedModel, split: Split, channels: tuple[str, ...], samples: int,
                 fit_seconds: float, key: str | None = None) -> dict[str, dict]:
    """The model's forecast scores with its interpolation MSE at the held-out points, and, where model.forecast
    offers it, its classical part's ("classical", point forecast only). The forecast reads the context the
    service would read for the series (protocol.newest: the model's context before the newest training point).
    key: the series' name in a model trained on several (its contexts carry it, as the service's do)."""
    idx = newest(split.train_t, fitted.context_seconds)
    context = model.Sequence(split.train_t[idx], split.train_x[idx], channels, key)
    started = time.perf_counter()
    forecast = model.forecast(fitted, context, at=split.test_t, samples=samples, quantiles=(0.05, 0.5, 0.95),
                              seed=0)
    forecast_seconds = time.perf_counter() - started
    out = {"model": {**score(forecast.mean, split, forecast.quantiles[0], forecast.quantiles[-1]),
                     "interp_mse": interpolation_mse(fitted, split, channels, samples, key),
                     "seconds": fit_seconds, "forecast_seconds": forecast_seconds}}
    if has_classical():
        classical = model.forecast(fitted, context, at=split.test_t, samples=samples, seed=0, part="classical")
        out["classical"] = score(classical.mean, split)
    return out


def interpolation_mse(fitted: model.FittedModel, split: Split, channels: tuple[str, ...], samples: int,
                      key: str | None = None) -> float:
    """MSE (protocol units) of the model's mean at each held-out time, each query's context the training points
    within ±context_seconds/2 of it (at least 2)."""
    requests = []
    for t in split.held_t:
        idx = nearby(split.train_t, t, fitted.context_seconds / 2)
        ctx = model.Sequence(split.train_t[idx], split.train_x[idx], channels, key)
        requests.append((ctx, np.array([t]), min(t, float(ctx.times[0]))))  # start: a query before its context
    means = []
    for i in range(0, len(requests), INTERP_BATCH):
        chunk = requests[i:i + INTERP_BATCH]
        results = model.forecast_batch(fitted, chunk, samples=samples, seeds=range(i, i + len(chunk)))
        means += [r.mean[0] for r in results]
    return channel_errors(np.array(means), split.held_x, split.scale)[1]

"""Models saved by earlier versions of the library keep loading and forecast exactly as they did.

tests/model/data/artifact_format1.* was written by the library before per-window frames existed (format
"latentcast.latent_ode/1"): the blob and the forecast it gave then (same context, times, samples and seed).
tests/model/data/artifact_local_2026_12.* is a local-frame model of counts written before band units weighed their
residuals and before counts were kept at or above zero (commit bb78cbe), with the forecast it gave then.
"""

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np

from model import Sequence, forecast, from_bytes

DATA = Path(__file__).parent / "data"


def test_format1_artifact_loads_and_forecasts_as_before():
    expected = json.loads((DATA / "artifact_format1.json").read_text())
    fitted = from_bytes((DATA / "artifact_format1.safetensors").read_bytes())
    rng = np.random.default_rng(0)  # the context the forecast was recorded with, rebuilt the same way
    t = np.sort(rng.uniform(0, 200, 80))
    x = np.stack([np.sin(t / 10), np.cos(t / 13)], 1)
    x[rng.random(x.shape) < 0.2] = np.nan
    x[np.all(np.isnan(x), 1), 0] = 0.0
    keep = t > expected["context_from"]
    got = forecast(fitted, Sequence(t[keep], x[keep], ("a", "b")), expected["at"], samples=expected["samples"],
                   seed=expected["seed"])
    assert fitted.horizon == expected["horizon"]
    np.testing.assert_allclose(got.mean, expected["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.std, expected["std"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.quantiles, expected["quantiles"], rtol=1e-5, atol=1e-6)


def test_local_frame_artifact_from_before_weighted_units_and_the_zero_bound_forecasts_as_before():
    """Its bands keep the plain spread over the context and reach below zero as they did; the same model with
    today's defaults for those two fields would answer otherwise, so the stored fields are what keep it."""
    expected = json.loads((DATA / "artifact_local_2026_12.json").read_text())
    fitted = from_bytes((DATA / "artifact_local_2026_12.safetensors").read_bytes())
    day = 86400.0
    rng = np.random.default_rng(expected["seed"])  # the series the model was trained on, rebuilt the same way
    t = 1.7e9 + np.sort(rng.uniform(0, 40 * day, 400))
    level = np.where(t < 1.7e9 + 30 * day, 3.0, 0.6)
    x = rng.poisson(level * (1 + 0.8 * np.sin(2 * np.pi * t / day)), t.size).astype(float)[:, None]
    series = Sequence(t, x, ("events",))
    assert fitted.component is not None
    assert not fitted.component.weighted_unit and fitted.component.nonnegative == ()

    def answer(model):
        return forecast(model, series, expected["at"], samples=expected["samples"],
                        quantiles=tuple(expected["quantiles"]), seed=0)

    got = answer(fitted)
    np.testing.assert_allclose(got.mean, expected["mean"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got.std, expected["std"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got.quantiles, expected["quantile_values"], rtol=1e-6, atol=1e-9)
    assert got.quantiles[0].min() < 0
    for today in ({"weighted_unit": True}, {"nonnegative": (True,)}):
        newer = copy.copy(fitted)
        newer.component = dataclasses.replace(fitted.component, **today)
        assert not np.allclose(answer(newer).quantiles, expected["quantile_values"], rtol=1e-6, atol=1e-9)

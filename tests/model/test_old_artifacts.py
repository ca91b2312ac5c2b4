"""Models saved by earlier versions of the library keep loading and forecast exactly as they did.

tests/model/data/artifact_format1.* was written by the library before per-window frames existed (format
"latentcast.latent_ode/1"): the blob and the forecast it gave then (same context, times, samples and seed).
"""

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

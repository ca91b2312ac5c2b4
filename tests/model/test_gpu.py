"""CUDA runs of the library. Marked `gpu`: they skip on a machine without CUDA (CI here has none)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_fixtures import TINY, sine_sequences

from model import fit, forecast, from_bytes, to_bytes

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none on this machine"),
]


def test_fit_on_cuda_and_forecast_on_cpu_agree() -> None:
    seqs = sine_sequences(16, 12, seed=0)
    gpu = fit(seqs, dataclasses.replace(TINY, device="cuda", epochs=3))
    assert gpu.history and all(np.isfinite(h["loss"]) for h in gpu.history)
    cpu = from_bytes(to_bytes(gpu))  # artifacts load on the CPU whatever trained them
    context, at = seqs[0], seqs[0].times[-1] + np.linspace(0.0, 0.5, 7)
    assert gpu.device.type == "cuda" and cpu.device.type == "cpu"
    on_gpu = forecast(gpu, context, at, samples=32, seed=3)
    on_cpu = forecast(cpu, context, at, samples=32, seed=3)
    np.testing.assert_allclose(on_gpu.mean, on_cpu.mean, rtol=1e-3, atol=1e-3)


def test_auto_device_picks_cuda() -> None:
    fitted = fit(sine_sequences(8, 10, seed=1), dataclasses.replace(TINY, device="auto", epochs=1))
    assert fitted.device.type == "cuda"

"""The micro-batcher with a real (toy) model: answers equal the single call, bursts batch, failures stay local."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import model
from service.forecasting.batcher import ForecastBatcher
from tests.service.forecast_support import CHANNELS, toy_model, toy_sequence, toy_stored


def _context(level: float, seed: int) -> model.Sequence:
    return model.Sequence(*toy_sequence(np.random.default_rng(seed), level), CHANNELS)


def _run(batcher: ForecastBatcher, jobs: list[tuple[model.Sequence, np.ndarray, int]]) -> list:
    stored = toy_stored()

    async def go() -> list:
        calls = [batcher.forecast(stored, ctx, at, samples=20, quantiles=(0.1, 0.9), seed=seed)
                 for ctx, at, seed in jobs]
        return await asyncio.gather(*calls, return_exceptions=True)

    return asyncio.run(go())


@pytest.mark.parametrize("processes", [0, 1])  # in threads, or in a solver process
def test_a_burst_is_batched_and_each_answer_equals_its_single_call(processes: int) -> None:
    fitted = toy_model()
    jobs = []
    for i in range(16):
        ctx = _context(-1.5 + 0.2 * i, i)
        jobs.append((ctx, np.linspace(ctx.times[0], ctx.times[-1] + 10, 7 + i), 1000 + i))
    batcher = ForecastBatcher(max_batch=8, wait_ms=5, processes=processes)
    try:
        results = _run(batcher, jobs)
    finally:
        batcher.close()
    assert batcher.batch_sizes == [8, 8]
    for (ctx, at, seed), got in zip(jobs, results, strict=True):
        alone = model.forecast(fitted, ctx, at, samples=20, quantiles=(0.1, 0.9), seed=seed)
        # float32 solves batched or alone round differently: about 1e-7 on values of order 1, so a value near 0
        # (a band edge crossing it) needs an absolute tolerance beside the relative one
        np.testing.assert_allclose(got.mean, alone.mean, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got.std, alone.std, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got.quantiles, alone.quantiles, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("processes", [0, 1])
def test_one_bad_request_fails_alone(processes: int) -> None:
    ctx = _context(0.5, 1)
    good = np.array([ctx.times[0], ctx.times[-1]])
    too_late = np.array([ctx.times[-1] + toy_model().horizon + 100])
    batcher = ForecastBatcher(max_batch=8, wait_ms=5, processes=processes)
    try:
        results = _run(batcher, [(ctx, good, 1), (ctx, too_late, 2), (ctx, good, 3)])
    finally:
        batcher.close()
    assert isinstance(results[1], model.OutOfRangeError)
    assert results[0].mean.shape == (2, 1) and results[2].mean.shape == (2, 1)


@pytest.mark.parametrize("points", [50, 10_000])
def test_batches_are_bounded_by_work(points: int) -> None:
    ctx = _context(0.0, 2)
    at = np.linspace(ctx.times[0], ctx.times[-1], 25)  # 25 times x 20 samples = 500 points each
    batcher = ForecastBatcher(max_batch=32, wait_ms=5, max_batch_points=points)
    try:
        results = _run(batcher, [(ctx, at, i) for i in range(6)])
    finally:
        batcher.close()
    assert all(r.mean.shape == (25, 1) for r in results)
    # At least one request per batch, however large; beyond it, no more than `points` per batch.
    assert max(batcher.batch_sizes) == (1 if points < 1000 else 6)

"""Forecasts solved in child processes: the same answers as in-process, models sent once, errors whole, a killed
child replaced."""

from __future__ import annotations

import os
import pickle
import signal

import numpy as np
import pytest

import model
from service.forecasting.solver_pool import SolverPool, SolverUnavailable
from tests.service.forecast_support import CHANNELS, toy_model, toy_sequence, toy_stored

QUANTILES = (0.1, 0.5, 0.9)


def _requests(n: int) -> list[tuple[model.Sequence, np.ndarray]]:
    out = []
    for i in range(n):
        ctx = model.Sequence(*toy_sequence(np.random.default_rng(i), -1 + 0.3 * i), CHANNELS)
        out.append((ctx, np.linspace(ctx.times[0], ctx.times[-1] + 10, 5 + i)))
    return out


@pytest.fixture
def pool():
    solver = SolverPool(1, torch_threads=1)
    yield solver
    solver.close()


def _same(a: model.Forecast, b: model.Forecast) -> None:
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(a.quantiles, b.quantiles, rtol=1e-6, atol=1e-9)


def test_answers_equal_the_in_process_call_and_the_model_is_sent_once(pool, monkeypatch) -> None:
    fitted, requests = toy_model(), _requests(4)
    reads: list[int] = []
    stored = toy_stored(reads)
    # The parent never rebuilds (nor re-serialises) a model: it reads the artifact and the child rebuilds it.
    monkeypatch.setattr(model, "from_bytes", _refuse)
    monkeypatch.setattr(model, "to_bytes", _refuse)
    for _ in range(2):
        got = pool.forecast_batch(stored, requests, samples=30, quantiles=QUANTILES, seeds=[1, 2, 3, 4])
        want = model.forecast_batch(fitted, requests, samples=30, quantiles=QUANTILES, seeds=[1, 2, 3, 4])
        assert len(got) == 4
        for a, b in zip(got, want, strict=True):
            _same(a, b)
    assert len(reads) == 1  # the second batch found the model in the child


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("the parent process rebuilt or serialised a model")


def test_retain_drops_the_models_of_versions_no_longer_ready(pool) -> None:
    reads: list[int] = []
    stored = toy_stored(reads)
    ctx, at = _requests(1)[0]
    pool.forecast_batch(stored, [(ctx, at)], samples=5, quantiles=QUANTILES, seeds=[0])
    pool.retain([stored.key])  # still ready: kept
    pool.forecast_batch(stored, [(ctx, at)], samples=5, quantiles=QUANTILES, seeds=[0])
    assert len(reads) == 1
    pool.retain([])  # deleted: the child drops it on its next batch, so this one reads the artifact again
    pool.forecast_batch(stored, [(ctx, at)], samples=5, quantiles=QUANTILES, seeds=[0])
    assert len(reads) == 2


def test_errors_arrive_with_their_type_and_attributes(pool) -> None:
    fitted, stored = toy_model(), toy_stored()
    ctx, _ = _requests(1)[0]
    late = ctx.times[-1] + fitted.horizon + 50
    with pytest.raises(model.OutOfRangeError) as caught:
        pool.forecast_batch(stored, [(ctx, np.array([late]))], samples=5, quantiles=QUANTILES, seeds=[0])
    assert caught.value.upper == pytest.approx(ctx.times[-1] + fitted.horizon)
    with pytest.raises(model.InputError, match="samples"):
        pool.forecast_batch(stored, [(ctx, ctx.times)], samples=0, quantiles=QUANTILES, seeds=[0])
    # the child survives its requests' errors
    assert pool.forecast_batch(stored, [(ctx, ctx.times)], samples=5, quantiles=QUANTILES, seeds=[0])


def test_a_killed_child_is_replaced_and_the_batch_answered(pool) -> None:
    stored, requests = toy_stored(), _requests(2)
    first = pool.forecast_batch(stored, requests, samples=10, quantiles=QUANTILES, seeds=[5, 6])
    (pid,) = pool.pids()
    os.kill(pid, signal.SIGKILL)
    again = pool.forecast_batch(stored, requests, samples=10, quantiles=QUANTILES, seeds=[5, 6])
    assert pool.pids() != [pid]
    for a, b in zip(first, again, strict=True):
        _same(a, b)


def test_close_stops_the_children() -> None:
    solver = SolverPool(2, torch_threads=1)
    solver.start()
    pids = solver.pids()
    assert len(set(pids)) == 2
    solver.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("error", [
    model.OutOfRangeError("t past the horizon", 1.5, 9.0),
    model.NonFiniteLossError("loss is nan", 4),
    model.TrainingCancelled("stopped", 2),
    model.ConfigError("rtol", "must be positive"),
    model.SolverError("step size underflow"),
])
def test_model_errors_pickle_whole(error: Exception) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error) and vars(again) == vars(error)


def test_a_child_that_dies_on_every_try_is_a_solver_unavailable(pool, monkeypatch) -> None:
    from service.forecasting import solver_pool

    tries = []

    def dies(self, message):
        tries.append(self.pid)
        raise EOFError

    monkeypatch.setattr(solver_pool._Child, "_call", dies)
    with pytest.raises(solver_pool.SolverUnavailable):
        pool.forecast_batch(toy_stored(), _requests(1), samples=5, quantiles=QUANTILES, seeds=[0])
    assert len(tries) == 2 and tries[0] != tries[1]  # the second try went to a fresh child


def test_a_batch_after_close_fails_instead_of_starting_a_child() -> None:
    from service.forecasting import solver_pool

    solver = SolverPool(1, torch_threads=1)
    solver.start()
    child = solver._children[0]
    solver.close()
    with pytest.raises(SolverUnavailable, match="shutting down"):  # what a batch in flight at close meets
        child.forecast_batch(toy_stored(), solver_pool._Batch(toy_stored().key, None, _requests(1), 5, QUANTILES,
                                                             [0]))
    assert solver.pids() == [None]
    solver.start()  # a pool can be started again (an app's lifespan may run twice)
    assert solver.forecast_batch(toy_stored(), _requests(1), samples=5, quantiles=QUANTILES, seeds=[0])
    solver.close()

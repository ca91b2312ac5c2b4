"""The solvers: where a batch of forecasts is computed, and the only place a model is rebuilt from its artifact.

Both take a `StoredModel` (a version's cache key and how to read its artifact), never a loaded model, and keep the
models they rebuilt (least recently used first out, bounded in artifact bytes):

    SolverPool       child processes (forecast_processes >= 1, the default): the API process loads no model
    InProcessSolver  threads of the API process (forecast_processes = 0): no process to start, for tests and
                     small machines

In the API process the event loop, the database reads and the JSON encoding hold the GIL for a few milliseconds per
request; a solve run in a thread there must take the GIL back after every torch operation, and under load it ran
at half the speed it has alone. A child process has the GIL to itself. Each child is driven by one thread at a
time over a pipe:

    parent → child   _Batch(key, artifact or None, requests, samples, quantiles, seeds, live)   None: exit
    child → parent   ("ok", [model.Forecast, ...]) | ("error", exception) | ("need", None)

A child answers "need" for a model it does not hold, and the parent reads the artifact (`StoredModel.read`, from
the database) and sends the batch again with it; the artifact crosses the pipe once per child and version. `live`,
when the ready versions changed since the child last heard, lets it drop the models of the others. A child that
dies (killed, out of memory) is replaced and the batch is sent once more; a second death is a SolverUnavailable.
A child exits when its pipe closes, so it never outlives the API process.

Answers are those of `model.forecast_batch` in the API process: the same code, the same torch threads, the same
seeds.
"""

import multiprocessing
import multiprocessing.connection
import queue
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Literal, Protocol, TypeAlias, cast

import torch

import model
from model.predict import Request
from service.forecasting.cache import CacheKey, ModelCache, StoredModel


class SolverUnavailable(RuntimeError):
    """A forecast's child process died twice running this batch."""


class Solver(Protocol):
    """What the batcher solves with (blocking calls: it makes them from its threads)."""

    def forecast_batch(self, stored: StoredModel, requests: Sequence[Request], *, samples: int,
                       quantiles: tuple[float, ...], seeds: Sequence[int]) -> list[model.Forecast]:
        """`model.forecast_batch` with the model of `stored`, loaded at most once."""
        ...

    def retain(self, live: Iterable[CacheKey]) -> None:
        """Drop the loaded models whose key is not in `live` (the ready versions)."""
        ...

    def start(self) -> None: ...

    def close(self) -> None: ...


def _solve(models: ModelCache[model.FittedModel], key: CacheKey, size: int, read: Callable[[], bytes],
           requests: list[Request], samples: int, quantiles: tuple[float, ...],
           seeds: list[int]) -> list[model.Forecast]:
    """The one solve of both solvers: the model from `models`, or rebuilt from `read()` once."""
    fitted = models.get(key, size, lambda: model.from_bytes(read()))
    return model.forecast_batch(fitted, requests, samples=samples, quantiles=quantiles, seeds=seeds)


class InProcessSolver:
    """Solves in the calling thread, with the models of `models` (shared by the batcher's threads)."""

    def __init__(self, models: ModelCache[model.FittedModel], torch_threads: int = 0):
        self.models = models
        self._torch_threads = torch_threads  # 0: leave torch's setting alone; set at the first solve
        self._threads_set = False

    def start(self) -> None:
        """Nothing to start: the batcher's threads solve."""

    def forecast_batch(self, stored: StoredModel, requests: Sequence[Request], *, samples: int,
                       quantiles: tuple[float, ...], seeds: Sequence[int]) -> list[model.Forecast]:
        if self._torch_threads and not self._threads_set:
            torch.set_num_threads(self._torch_threads)  # process-wide: the API process runs no training
            self._threads_set = True
        return _solve(self.models, stored.key, stored.size, stored.read, list(requests), samples, tuple(quantiles),
                      list(seeds))

    def retain(self, live: Iterable[CacheKey]) -> None:
        self.models.retain(live)

    def close(self) -> None:
        pass


class _NotHeld(Exception):
    """The child does not hold the model it was asked for, and was not sent its artifact."""


@dataclass(frozen=True)
class _Batch:
    """parent → child. artifact: None until the child answered "need"; live: the ready versions' keys, sent when
    they changed since this child last heard (None: no change)."""

    key: CacheKey
    artifact: bytes | None
    requests: list[Request]
    samples: int
    quantiles: tuple[float, ...]
    seeds: list[int]
    live: frozenset[CacheKey] | None = None


# child → parent
_Reply: TypeAlias = (tuple[Literal["ok"], list[model.Forecast]] | tuple[Literal["error"], Exception]
                     | tuple[Literal["need"], None])


def _child_main(conn: multiprocessing.connection.Connection, torch_threads: int, cache_bytes: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    if torch_threads:
        torch.set_num_threads(torch_threads)
    models: ModelCache[model.FittedModel] = ModelCache(cache_bytes)
    while True:
        try:
            batch: _Batch | None = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if batch is None:
            return
        if batch.live is not None:
            models.retain(batch.live)

        def read(artifact: bytes | None = batch.artifact) -> bytes:
            if artifact is None:
                raise _NotHeld
            return artifact

        reply: _Reply
        try:
            size = 0 if batch.artifact is None else len(batch.artifact)
            reply = ("ok", _solve(models, batch.key, size, read, batch.requests, batch.samples, batch.quantiles,
                                  batch.seeds))
        except _NotHeld:
            reply = ("need", None)
        except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it for the request
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - an exception that does not pickle still gets its message through
            conn.send(("error", model.ModelError(f"{type(exc).__name__}: {exc}")))


class _Child:
    def __init__(self, context: SpawnContext, torch_threads: int, cache_bytes: int):
        self._context, self._args = context, (torch_threads, cache_bytes)
        self._conn: multiprocessing.connection.Connection | None = None
        self._process: SpawnProcess | None = None
        self.closed = False  # set by the pool's close: a batch in flight then fails instead of starting a child
        self.heard: frozenset[CacheKey] | None = None  # the pool's `live` as last sent to this child

    def open(self) -> None:
        self.closed = False
        self.start()

    def start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_child_main, args=(child, *self._args), daemon=True,
                                              name="latentcast-solver")
        self._process.start()
        child.close()
        self._conn = parent

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def stop(self, timeout: float = 5.0) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None

    def _call(self, batch: _Batch) -> _Reply:
        assert self._conn is not None
        self._conn.send(batch)
        return cast(_Reply, self._conn.recv())  # Connection.recv is untyped: the child sends only _Reply

    def forecast_batch(self, stored: StoredModel, batch: _Batch) -> list[model.Forecast]:
        """Solve `batch` (its artifact None) in this child; read `stored` only if the child does not hold it."""
        for attempt in (1, 2):
            if self.closed:
                raise SolverUnavailable("the forecast solver is shutting down")
            if self._process is None or not self._process.is_alive():
                self.stop()
                self.start()
            try:
                reply = self._call(batch)
                if reply[0] == "need":
                    reply = self._call(replace(batch, artifact=stored.read(), live=None))
            except (EOFError, OSError) as exc:
                self.stop()
                if attempt == 2:
                    raise SolverUnavailable("the forecast process died twice solving this request") from exc
                continue
            if reply[0] == "error":
                raise reply[1]
            if reply[0] == "need":  # the child was just sent the artifact: it never answers "need" then
                raise AssertionError("the solver process asked again for a model it was sent")
            return reply[1]
        raise AssertionError("unreachable")


class SolverPool:
    """`processes` child processes; `forecast_batch` runs on an idle one (blocking: call it from a thread)."""

    def __init__(self, processes: int, *, torch_threads: int = 1, cache_bytes: int = 1 << 30):
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        context = multiprocessing.get_context("spawn")  # fork would copy the parent's threads' locks
        self._children = [_Child(context, torch_threads, cache_bytes) for _ in range(processes)]
        self._idle: queue.SimpleQueue[_Child] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = False
        self._live: frozenset[CacheKey] | None = None  # the ready versions' keys, once `retain` said them

    @property
    def processes(self) -> int:
        return len(self._children)

    def start(self) -> None:
        """Start the children now (they take a few seconds to import torch), rather than on the first solve."""
        with self._lock:
            if not self._started:
                for child in self._children:
                    child.open()
                    self._idle.put(child)
                self._started = True

    def pids(self) -> list[int | None]:
        return [child.pid for child in self._children]

    def forecast_batch(self, stored: StoredModel, requests: Sequence[Request], *, samples: int,
                       quantiles: tuple[float, ...], seeds: Sequence[int]) -> list[model.Forecast]:
        """`model.forecast_batch` with the model of `stored`, solved in a child, which rebuilds it once."""
        self.start()
        idle = self._idle  # `close` replaces it: a child in use goes back to the queue it came from
        child = idle.get()
        live = self._live
        try:
            return child.forecast_batch(stored, _Batch(stored.key, None, list(requests), samples, tuple(quantiles),
                                                       list(seeds), None if live == child.heard else live))
        finally:
            child.heard = live
            idle.put(child)

    def retain(self, live: Iterable[CacheKey]) -> None:
        """Each child drops the models not in `live` when it takes its next batch."""
        self._live = frozenset(live)

    def close(self) -> None:
        with self._lock:
            if self._started:
                for child in self._children:
                    child.closed = True
                    child.stop()
                self._idle = queue.SimpleQueue()
                self._started = False

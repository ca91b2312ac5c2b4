"""Forecast solves in child processes, so that they never wait for the API process's GIL.

In the API process the event loop, the database reads and the JSON encoding hold the GIL for a few milliseconds per
request; a solve run in a thread there must take the GIL back after every torch operation, and under load it ran
at half the speed it has alone. A child process has the GIL to itself. Each child is driven by one thread at a
time over a pipe:

    parent → child   (key, artifact or None, requests, samples, quantiles, seeds)   None: exit
    child → parent   ("ok", [model.Forecast, ...]) | ("error", exception) | ("need", None)

A child keeps the models it was sent (least recently used first out, bounded in artifact bytes); it answers
"need" for one it does not hold, and the parent sends the request again with the model's artifact. A child that
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
from collections.abc import Sequence
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Literal, TypeAlias, cast

import torch

import model
from model.predict import Request
from service.forecasting.cache import CacheKey, ModelCache


class SolverUnavailable(RuntimeError):
    """A forecast's child process died twice running this batch."""


class _NotHeld(Exception):
    """The child does not hold the model it was asked for, and was not sent its artifact."""


# parent → child: (key, artifact or None, requests, samples, quantiles, seeds); None: exit
_Message: TypeAlias = tuple[CacheKey, bytes | None, list[Request], int, tuple[float, ...], list[int]]
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
            message: _Message | None = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if message is None:
            return
        key, artifact, requests, samples, quantiles, seeds = message

        def load(artifact: bytes | None = artifact) -> model.FittedModel:
            if artifact is None:
                raise _NotHeld
            return model.from_bytes(artifact)

        reply: _Reply
        try:
            fitted = models.get(key, 0 if artifact is None else len(artifact), load)
            reply = ("ok", model.forecast_batch(fitted, requests, samples=samples, quantiles=quantiles, seeds=seeds))
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

    def _call(self, message: _Message) -> _Reply:
        assert self._conn is not None
        self._conn.send(message)
        return cast(_Reply, self._conn.recv())  # Connection.recv is untyped: the child sends only _Reply

    def forecast_batch(self, key: CacheKey, fitted: model.FittedModel, requests: list[Request], samples: int,
                       quantiles: tuple[float, ...], seeds: list[int]) -> list[model.Forecast]:
        for attempt in (1, 2):
            if self.closed:
                raise SolverUnavailable("the forecast solver is shutting down")
            if self._process is None or not self._process.is_alive():
                self.stop()
                self.start()
            try:
                reply = self._call((key, None, requests, samples, quantiles, seeds))
                if reply[0] == "need":
                    reply = self._call((key, model.to_bytes(fitted), requests, samples, quantiles, seeds))
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

    def forecast_batch(self, key: CacheKey, fitted: model.FittedModel, requests: Sequence[Request], *,
                       samples: int, quantiles: tuple[float, ...], seeds: Sequence[int]) -> list[model.Forecast]:
        """`model.forecast_batch(fitted, requests, ...)`, solved in a child; `key` names fitted (a model version)
        so each child loads it once."""
        self.start()
        idle = self._idle  # `close` replaces it: a child in use goes back to the queue it came from
        child = idle.get()
        try:
            return child.forecast_batch(key, fitted, list(requests), samples, tuple(quantiles), list(seeds))
        finally:
            idle.put(child)

    def close(self) -> None:
        with self._lock:
            if self._started:
                for child in self._children:
                    child.closed = True
                    child.stop()
                self._idle = queue.SimpleQueue()
                self._started = False

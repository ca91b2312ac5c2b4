"""Micro-batching: concurrent forecast requests for one model version are solved together, off the event loop.

Requests join a group keyed by (model version, samples, quantile levels), the arguments `forecast_batch` shares
across its items. Each group has at most `threads` batches in flight (one per worker thread, so a busy model uses
every core it is given): while they are solved, new requests queue up and go out together as the next batch, so
a busy model batches itself and an idle one answers after at most `wait_ms`. A batch holds at most `max_batch`
requests and, beyond its first request, at most `max_batch_points` (query times × samples) so that one batch
cannot exhaust memory.

Batching never changes an answer: each request carries its own seed (a random one when the client gave none), and
`forecast_batch` answers each item as its single `forecast` call would (within 1e-4 relative).

With `processes` > 0 the batches are solved in that many child processes (service/forecasting/solver_pool.py), one
batch per process at a time, so that solving never contends with the API's own work for the GIL; with 0, in threads
of this process. Either way a request names its model by `StoredModel` (key and artifact reader), and only the
solver rebuilds it.
"""

import asyncio
import secrets
from collections.abc import Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import model
from model.arrays import FloatArray
from model.predict import Request
from service.forecasting.cache import CacheKey, ModelCache, StoredModel, Throttle
from service.forecasting.solver_pool import InProcessSolver, Solver, SolverPool

MAX_BATCH_POINTS = 2_000_000


@dataclass
class _Request:
    context: model.Sequence
    at_seconds: FloatArray
    seed: int
    future: asyncio.Future[model.Forecast]


@dataclass
class _Group:
    stored: StoredModel  # the model version
    samples: int
    quantiles: tuple[float, ...]
    loop: asyncio.AbstractEventLoop
    pending: list[_Request] = field(default_factory=list)
    draining: bool = False
    task: asyncio.Task[None] | None = None  # held so the running drain is not garbage-collected


class ForecastBatcher:
    """`await batcher.forecast(stored, context, at_seconds, ...)` → model.Forecast, solved in a batch."""

    def __init__(self, max_batch: int, wait_ms: float, threads: int = 2,
                 max_batch_points: int = MAX_BATCH_POINTS, torch_threads: int = 0, processes: int = 0,
                 cache_bytes: int = 1 << 30, models: ModelCache[model.FittedModel] | None = None):
        """torch_threads: each solver's torch threads (0: torch's default in threads, 1 in a process).
        cache_bytes: each solver process's bound on its loaded models; `models`: the loaded models of the
        in-process solver (processes=0), a ModelCache(cache_bytes) by default."""
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000.0
        self.max_batch_points = max_batch_points
        # In process mode each thread drives one child process.
        self.threads = processes or threads
        self.solver: Solver = (
            SolverPool(processes, torch_threads=torch_threads or 1, cache_bytes=cache_bytes) if processes
            else InProcessSolver(models if models is not None else ModelCache(cache_bytes), torch_threads))
        self._pool: ThreadPoolExecutor | None = None
        self._groups: dict[Hashable, _Group] = {}
        self._retain = Throttle()
        self.batch_sizes: list[int] = []  # sizes of the batches solved so far (last 1,000), for tests and metrics

    async def forecast(self, stored: StoredModel, context: model.Sequence, at_seconds: FloatArray, *,
                       samples: int, quantiles: tuple[float, ...], seed: int | None = None) -> model.Forecast:
        """Solve one request. `stored` names the model version; `at_seconds` float64 (Q,) relative to the
        context's time origin. Raises what `model.forecast` raises for this request alone, and what
        `stored.read()` raises should the solver need the artifact."""
        loop = asyncio.get_running_loop()
        group_key = (stored.key, samples, quantiles)
        group = self._groups.get(group_key)
        if group is None or group.loop is not loop:
            group = self._groups[group_key] = _Group(stored, samples, quantiles, loop)
        request = _Request(context, at_seconds, secrets.randbits(63) if seed is None else seed,
                           loop.create_future())
        group.pending.append(request)
        if not group.draining:
            group.draining = True
            group.task = loop.create_task(self._drain(group_key, group))
        return await request.future

    async def _drain(self, group_key: Hashable, group: _Group) -> None:
        solving: set[asyncio.Task[None]] = set()
        try:
            while True:
                if group.pending and len(solving) < self.threads:
                    if len(group.pending) < self.max_batch and self.wait_s > 0:
                        await asyncio.sleep(self.wait_s)  # let concurrent requests join
                    batch = [r for r in self._take(group) if not r.future.done()]  # skip clients that went away
                    if batch:
                        solving.add(group.loop.create_task(self._solve(group, batch)))
                    continue
                if not solving:
                    break
                # Wait for a batch to finish; newcomers meanwhile gather into the next batch (or, if none came,
                # the drain ends once nothing is in flight).
                _, solving = await asyncio.wait(solving, return_when=asyncio.FIRST_COMPLETED)
        finally:
            group.draining = False
            if self._groups.get(group_key) is group and not group.pending:
                del self._groups[group_key]

    def _take(self, group: _Group) -> list[_Request]:
        points, n = 0, 0
        for request in group.pending[: self.max_batch]:
            points += len(request.at_seconds) * group.samples
            if n and points > self.max_batch_points:
                break
            n += 1
        batch, group.pending[:n] = group.pending[:n], []
        return batch

    async def _solve(self, group: _Group, batch: list[_Request]) -> None:
        self.batch_sizes = [*self.batch_sizes[-999:], len(batch)]
        try:
            results = await group.loop.run_in_executor(self._executor(), self._solve_batch, group, batch)
        except Exception as exc:  # noqa: BLE001 (whatever failed goes to the waiting requests, not the loop)
            if len(batch) == 1:
                _settle(batch[0].future, exc=exc)
                return
            # One bad request must not fail its neighbours: solve each alone and give each its own outcome.
            for request in batch:
                try:
                    result = await group.loop.run_in_executor(self._executor(), self._solve_one, group, request)
                except Exception as exc:  # noqa: BLE001 - handed to the request that caused it
                    _settle(request.future, exc=exc)
                else:
                    _settle(request.future, result=result)
            return
        for request, result in zip(batch, results, strict=True):
            _settle(request.future, result=result)

    def _solve_batch(self, group: _Group, batch: list[_Request]) -> list[model.Forecast]:
        requests: list[Request] = [(r.context, r.at_seconds) for r in batch]
        return self.solver.forecast_batch(group.stored, requests, samples=group.samples, quantiles=group.quantiles,
                                          seeds=[r.seed for r in batch])

    def _solve_one(self, group: _Group, request: _Request) -> model.Forecast:
        return self._solve_batch(group, [request])[0]

    def start(self) -> None:
        """Start the solver processes now instead of at the first forecast (a no-op in thread mode)."""
        self.solver.start()

    def retain_due(self, every_s: float) -> bool:
        """Whether `retain` is due (service.forecasting.versions.retain asks every forecast)."""
        return self._retain.due(every_s)

    def retain(self, live: Iterable[CacheKey]) -> None:
        """The solvers drop the models whose key is not in `live` (the ready versions)."""
        self.solver.retain(live)

    def _executor(self) -> ThreadPoolExecutor:
        # Made on first use and again after `close`, so an app can be started and stopped more than once.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="forecast")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.solver.close()


def _settle(future: asyncio.Future[model.Forecast], *, result: model.Forecast | None = None,
            exc: BaseException | None = None) -> None:
    if future.done():  # cancelled: the client disconnected
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None  # the callers give a result or an exception
        future.set_result(result)

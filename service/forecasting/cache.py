"""Loaded models, least recently used first out, bounded in bytes; and `StoredModel`, what a solver loads one from.

Keyed by (model id, version, artifact sha256): a retrained or re-published version has another key, so a stale
entry is never served; entries whose version left the ready set (deleted, retrained over) are dropped by `retain`
(forecasts call it at most every few seconds, `retain_due`, so a request reads no more than the rows it uses).
A loaded model's size is counted as its artifact's byte length, which is what its weights occupy in memory.
Thread-safe: solver threads load models concurrently.

Only solvers hold loaded models (service/forecasting/solver_pool.py): each solver process its own cache, and with
`forecast_processes=0` the API process one for the threads that solve there.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

T = TypeVar("T")


class CacheKey(NamedTuple):
    model_id: int
    version: int
    sha256: str


@dataclass(frozen=True)
class StoredModel:
    """A ready version as a solver needs it: `key` names it (a solver loads each key once and keeps it), `size` is
    its artifact's length in bytes, and `read()` returns the artifact (safetensors bytes; blocking, a database
    read), called only by a solver that does not hold `key` yet."""

    key: CacheKey
    size: int
    read: Callable[[], bytes]


class Throttle:
    """`due(every_s)`: True at the first call, then once `every_s` seconds have passed since the last True (one
    caller among concurrent ones gets it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: float | None = None  # time.monotonic() of the last True

    def due(self, every_s: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < every_s:
                return False
            self._last = now
            return True


class ModelCache(Generic[T]):
    """`get(key, size, load)` returns the cached object or calls `load()` once, even under concurrent calls."""

    def __init__(self, capacity_bytes: int):
        self.capacity_bytes = capacity_bytes
        self._entries: OrderedDict[CacheKey, tuple[T, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[CacheKey, threading.Lock] = {}
        self.hits = 0
        self.misses = 0
        self._retain = Throttle()

    def get(self, key: CacheKey, size: int, load: Callable[[], T]) -> T:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key][0]
            key_lock = self._loading.setdefault(key, threading.Lock())
        # One loader per key; other keys are served meanwhile.
        with key_lock:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return self._entries[key][0]
            try:
                value = load()
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:
                self._loading.pop(key, None)
                self.misses += 1
                self._entries[key] = (value, size)
                self._evict(keep=key)
            return value

    def retain(self, live: Iterable[CacheKey]) -> None:
        """Drop every entry whose key is not in `live` (the ready versions the database still holds)."""
        live = set(live)
        with self._lock:
            for key in [k for k in self._entries if k not in live]:
                del self._entries[key]

    def retain_due(self, every_s: float) -> bool:
        """Whether `retain` is due: True on the first call and then once `every_s` seconds have passed since the
        last True (one caller among concurrent ones gets it)."""
        return self._retain.due(every_s)

    def _evict(self, keep: CacheKey) -> None:
        # The entry just loaded stays even when it alone exceeds the bound: the request needs it.
        while self.size_bytes > self.capacity_bytes and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            if oldest == keep:
                self._entries.move_to_end(oldest)
                continue
            del self._entries[oldest]

    @property
    def size_bytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def keys(self) -> list[CacheKey]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

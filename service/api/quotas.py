"""Per-key quotas enforced at the API: a request rate and open event streams. (Training jobs per key are counted
in the database, where the jobs are: service.storage.jobs.create_training.)

The request rate is a moving window: at most `requests` in any `window_s` seconds, so a refusal's Retry-After is
exact, when the oldest request in the window leaves it. Its counts live in Redis when the deployment has one (the
queue URL; `limits`' MovingWindowRateLimiter), so every API replica sees the same count, and in this process
otherwise (`MovingWindow`). Should Redis fail, this process counts on its own for FALLBACK_S (one warning line),
then tries Redis again: a rate limit must not take the API down with the queue.

Open event streams are counted in this process: a stream lives on one connection to one replica.
"""

import collections
import logging
import math
import threading
import time
from collections.abc import Callable

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

# How long to count in-process after Redis failed before trying it again.
FALLBACK_S = 5.0
# A Redis that drops packets must not hold every request for the kernel's timeouts.
REDIS_TIMEOUT_S = 0.5


def redis_url(queue_url: str | None) -> str | None:
    """The Redis URL `limits` takes for a Redis queue URL, or None when the queue is not in Redis."""
    if queue_url is None:
        return None
    if queue_url.startswith(("redis://", "rediss://")):
        return queue_url
    if queue_url.startswith("unix://"):
        return "redis+" + queue_url
    return None


class MovingWindow:
    """At most `limit` hits per key in any `window_s` seconds, counted in this process: each key's hit times, oldest
    first; a hit first drops the times that have left the window. It decides as `limits`' MovingWindowRateLimiter
    over its MemoryStorage does (the test oracle), without that storage's way of expiring entries: a timer thread
    started at most 10 ms apart, so on a service answering a request every 10 ms or more, a thread start (up to
    milliseconds on a busy machine) inside every request. Keys are API-key hashes: as many as there are keys."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        if limit < 1 or window_s <= 0:
            raise ValueError(f"a moving window needs limit >= 1 and window_s > 0; got {limit} and {window_s}")
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._hits: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count one hit of `key`: None when it is within the limit, else the seconds until the oldest hit leaves
        the window (the refused hit is not counted)."""
        with self._lock:
            now = self._clock()
            times = self._hits.setdefault(key, collections.deque())
            while times and times[0] < now - self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                return times[0] + self.window_s - now
            times.append(now)
            return None


class RateLimiter:
    """At most `requests` per identity in any `window_s` seconds. `requests` 0: no limit."""

    def __init__(self, requests: int, window_s: int, *, redis: str | None = None, namespace: str = "latentcast"):
        self.item = RateLimitItemPerSecond(max(requests, 1), window_s)
        self.enabled = requests > 0
        self.backend = "redis" if redis else "memory"
        self._local = MovingWindow(max(requests, 1), window_s)
        self._shared = None
        if redis is not None:
            storage = RedisStorage(redis, key_prefix=f"{namespace}:rate", socket_timeout=REDIS_TIMEOUT_S,
                                   socket_connect_timeout=REDIS_TIMEOUT_S)
            self._shared = MovingWindowRateLimiter(storage)
        self._redis_down_until = 0.0

    def hit(self, identity: str) -> int | None:
        """Count one request of `identity`. None when it is within the limit, else the whole seconds to wait."""
        if not self.enabled:
            return None
        if self._shared is None or time.monotonic() < self._redis_down_until:
            wait = self._local.hit(identity)
            return None if wait is None else max(1, math.ceil(wait))
        try:
            if self._shared.hit(self.item, identity):
                return None
            reset = self._shared.get_window_stats(self.item, identity).reset_time
        except Exception as exc:  # noqa: BLE001 (Redis unreachable or failing: count here for a while)
            self._redis_down_until = time.monotonic() + FALLBACK_S
            log.warning("rate limit: Redis failed (%s: %s); counting in this process for %g s",
                        type(exc).__name__, (str(exc).splitlines() or [""])[0], FALLBACK_S)
            return self.hit(identity)
        return max(1, math.ceil(reset - time.time()))


class StreamSlots:
    """Open event streams per identity in this process, at most `limit` each."""

    def __init__(self, limit: int):
        self.limit = limit
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, identity: str) -> bool:
        with self._lock:
            if self._open.get(identity, 0) >= self.limit:
                return False
            self._open[identity] = self._open.get(identity, 0) + 1
            return True

    def release(self, identity: str) -> None:
        with self._lock:
            left = self._open.get(identity, 0) - 1
            if left > 0:
                self._open[identity] = left
            else:
                self._open.pop(identity, None)

    def open(self, identity: str) -> int:
        with self._lock:
            return self._open.get(identity, 0)

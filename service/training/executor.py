"""The executor: a Huey queue that delivers job ids to workers, and the sweeper that makes delivery reliable.

    SqliteHuey   default: a file in DATA_DIR; `latentcast serve` runs one consumer process beside the API
    RedisHuey    LATENTCAST_QUEUE_URL=redis://…       } `latentcast worker` on each worker machine,
    PostgresHuey LATENTCAST_QUEUE_URL=postgresql://…  } the API servers run no consumer

Huey acknowledges nothing (a message is gone once a consumer takes it), so the jobs table is the truth and every
worker process runs a sweeper thread (service.storage.jobs.sweep). Messages are JSON, never pickle: they carry one
job id. This module imports no torch: the API process enqueues through it, and CUDA is initialised only by the
training code inside a worker process. Nor does it import that code (service.training.trainer, which enqueues
through `submit` when it hands a job back): the worker process (service.training.worker) passes the task its
`run_job` in the WorkerContext.
"""

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from huey import PostgresHuey, RedisHuey, SqliteHuey
from huey.api import Huey
from huey.registry import Message
from huey.serializer import Serializer
from redis import ConnectionPool
from sqlalchemy import Engine

from service.config import Settings
from service.storage import jobs
from service.storage.db import private_file

log = logging.getLogger(__name__)

TASK_NAME = "run_job"
# Seconds to wait for a TCP connection to a Redis or PostgreSQL queue: a host that drops packets must not hold a
# request (a job's send, /readyz) for the kernel's two minutes.
CONNECT_TIMEOUT_S = 5


class JsonSerializer(Serializer):  # type: ignore[misc]  # huey is untyped: its Serializer is Any to mypy
    """Huey messages as JSON. Only what latentcast sends is accepted: plain values, no dates, no callbacks."""

    def _serialize(self, data: Any) -> bytes:
        if not isinstance(data, Message):
            raise TypeError(f"latentcast's queue carries task messages only, not {type(data).__name__}")
        fields = data._asdict()
        for key in ("on_complete", "on_error", "chord_config", "eta", "expires", "expires_resolved"):
            if fields[key] is not None:
                raise TypeError(f"latentcast's queue does not carry {key}: got {fields[key]!r}")
        return json.dumps(fields, separators=(",", ":")).encode()

    def _deserialize(self, data: bytes) -> Message:
        fields = json.loads(data)
        fields["args"] = tuple(fields.get("args") or ())
        return Message(**fields)


def _postgres_dsn(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class Queue:
    huey: Huey
    run_job: Callable[[str], object]  # the Huey task wrapper: run_job(job_id) enqueues a message


def make_queue(settings: Settings) -> Queue:
    """The queue `settings` name: SqliteHuey in data_dir unless queue_url says redis://… or postgresql://…."""
    url = settings.queue_url
    common: dict[str, Any] = {"results": False, "serializer": JsonSerializer(), "utc": True}
    if url is None:
        path = (settings.data_dir / "queue.db").resolve()
        private_file(path)  # 0600, and so are the -wal and -shm files SQLite makes beside it
        huey: Huey = SqliteHuey(settings.queue_name, filename=str(path), **common)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        pool = ConnectionPool.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S)
        huey = RedisHuey(settings.queue_name, connection_pool=pool, **common)
    elif url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        huey = PostgresHuey(settings.queue_name, dsn=_postgres_dsn(url), connect_timeout=CONNECT_TIMEOUT_S, **common)
    else:
        raise ValueError(f"LATENTCAST_QUEUE_URL must start with redis:// or postgresql://, got {url[:32]!r}…")
    return Queue(huey=huey, run_job=huey.task(name=TASK_NAME)(_run_job))


_queues: dict[tuple[str | None, str, str], Queue] = {}
_queues_lock = threading.Lock()


def get_queue(settings: Settings) -> Queue:
    """One queue object per queue per process (its storage holds connections)."""
    key = (settings.queue_url, settings.queue_name, str(settings.data_dir.resolve()))
    with _queues_lock:
        if key not in _queues:
            _queues[key] = make_queue(settings)
        return _queues[key]


def close_queue(settings: Settings) -> None:
    """Drop this process's queue object for `settings` and close its store's connections."""
    key = (settings.queue_url, settings.queue_name, str(settings.data_dir.resolve()))
    with _queues_lock:
        queue = _queues.pop(key, None)
    if queue is not None:
        queue.huey.storage.close()


def submit(settings: Settings, job_id: str) -> bool:
    """Send a job id to the workers. Call after the job row is committed.

    A failed send is logged, not raised: the job is safely `queued` and the sweeper sends it again.
    """
    try:
        get_queue(settings).run_job(job_id)
    except Exception:  # the queue store may be down; the job row is the truth and the sweeper retries
        log.exception("could not enqueue job %s; the sweeper will retry", job_id)
        return False
    return True


def check_reachable(settings: Settings) -> None:
    """Raise unless the queue's store answers a query now (the number of waiting messages: one round trip)."""
    get_queue(settings).huey.pending_count()


def pending_job_ids(huey: Huey, limit: int = 10_000) -> set[str]:
    """Job ids of the messages waiting in the queue (not yet taken by a consumer)."""
    return {str(task.args[0]) for task in huey.pending(limit) if task.args}


# ---- inside a worker process -------------------------------------------------------------------------------


class Train(Protocol):
    """trainer.run_job's signature: train job `job_id`, returning its final status."""

    def __call__(self, engine: Engine, settings: Settings, job_id: str, *, worker_id: str,
                 shutdown: threading.Event) -> str: ...


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    worker_id: str
    shutdown: threading.Event
    # trainer.run_job, given by the worker: the task calls it, and this module never imports the training code
    train: Train


_context: WorkerContext | None = None


def set_worker_context(context: WorkerContext | None) -> None:
    global _context
    _context = context


def _run_job(job_id: str) -> None:
    """The one task: train job `job_id`. Runs in a consumer's worker thread."""
    if _context is None:
        raise RuntimeError("run_job executed outside a latentcast worker process")
    _context.train(_context.engine, _context.settings, job_id, worker_id=_context.worker_id,
                   shutdown=_context.shutdown)


class Sweeper(threading.Thread):
    """Every sweep_every_seconds: re-enqueue what jobs.sweep finds lost. A daemon thread of the worker process."""

    def __init__(self, settings: Settings, engine: Engine, huey: Huey, stop: threading.Event):
        super().__init__(name="latentcast-sweeper", daemon=True)
        self.settings, self.engine, self.huey, self._halt = settings, engine, huey, stop

    def sweep_once(self) -> list[str]:
        again = jobs.sweep(self.engine, self.settings, pending_job_ids(self.huey))
        for job_id in again:
            log.warning("sweeper: job %s re-enqueued", job_id)
            submit(self.settings, job_id)
        return again

    def run(self) -> None:
        while not self._halt.wait(self.settings.sweep_every_seconds):
            try:
                self.sweep_once()
            except Exception:  # a database hiccup must not end the sweeper
                log.exception("sweep failed; trying again in %.1f s", self.settings.sweep_every_seconds)


def worker_id() -> str:
    return f"{os.uname().nodename}:{os.getpid()}"

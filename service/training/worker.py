"""The worker process (`latentcast worker`) and the one `latentcast serve` runs beside the API.

A worker process is one Huey consumer whose worker threads train, a sweeper thread, and (as serve's child) a
watch on its parent. It trains in the consumer process itself (thread workers, no fork after start), so CUDA is
initialised in the process that trains and never before a fork. When the consumer ends, for whatever reason, the
process ends: nothing keeps sweeping or heartbeating for a consumer that is gone (the sweeper is a daemon thread
and heartbeats come from the running job itself).

Stopping (SIGTERM or SIGINT): running jobs stop at their next step and go back to the queue, then the process exits.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from huey.consumer import Consumer

from service.config import Settings
from service.storage.db import make_engine
from service.training import executor

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 60.0


class _Consumer(Consumer):  # type: ignore[misc]  # huey is untyped: its Consumer is Any to mypy
    def __init__(self, *args: Any, shutdown: threading.Event, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._shutdown = shutdown

    def stop(self, graceful: bool = False) -> None:
        # Running trainings see this through should_stop, hand their jobs back and return, so a graceful stop is
        # quick: wait for them instead of abandoning jobs to the sweeper.
        self._shutdown.set()
        super().stop(graceful=True)


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    """serve's child: when serve is gone (re-parented), stop as if signalled, so no orphan keeps training."""
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:
            log.warning("parent %d is gone: stopping the worker", parent_pid)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def run_worker(settings: Settings, *, parent_pid: int | None = None) -> int:
    """Run a consumer of settings' queue until signalled; returns the exit status."""
    # Import the training code (torch, model/) before taking any message: a consumer thread that spent seconds
    # importing would hold a message unclaimed, and a broken installation fails here, at start, not per job.
    # Only here, in the process that trains: its run_job is the queue's task (executor.WorkerContext.train).
    from service.training import trainer

    engine = make_engine(settings.db_url)
    queue = executor.get_queue(settings)
    shutdown = threading.Event()
    executor.set_worker_context(executor.WorkerContext(settings, engine, executor.worker_id(), shutdown,
                                                       trainer.run_job))
    consumer = _Consumer(queue.huey, workers=settings.worker_threads, worker_type="thread", periodic=False,
                         graceful_signal="TERM", shutdown_timeout=SHUTDOWN_TIMEOUT_S, max_delay=1.0,
                         health_check_interval=5, shutdown=shutdown)
    sweeper = executor.Sweeper(settings, engine, queue.huey, shutdown)
    sweeper.start()
    if parent_pid is not None:
        threading.Thread(target=_watch_parent, args=(parent_pid, shutdown), daemon=True).start()
    log.info("worker %s consuming queue %r (%s)", executor.worker_id(), settings.queue_name,
             settings.queue_url.split("://")[0] if settings.queue_url else "sqlite file")
    try:
        consumer.run()
    finally:
        shutdown.set()
        executor.set_worker_context(None)
        engine.dispose()
    return 0


class ChildWorker:
    """serve's own consumer: `python -m service.cli worker` as a child process, restarted if it dies.

    A fresh interpreter (not a fork of the API process), so it shares no connections, threads or CUDA state.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)

    def _spawn(self) -> None:
        cmd = [sys.executable, "-m", "service.cli", "worker", "--parent-pid", str(os.getpid())]
        self._proc = subprocess.Popen(cmd)
        log.info("started worker process %d", self._proc.pid)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _supervise(self) -> None:
        while not self._stop.wait(1.0):
            if self._proc is not None and self._proc.poll() is not None and not self._stop.is_set():
                log.error("worker process %d exited with %s; starting another", self._proc.pid,
                          self._proc.returncode)
                time.sleep(1.0)
                if not self._stop.is_set():
                    self._spawn()

    def stop(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(SHUTDOWN_TIMEOUT_S + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""Real worker processes (`python -m service.cli worker`) for end-to-end tests.

Backends: SQLite database + SqliteHuey queue file; PostgreSQL database + a Redis queue with a unique name per test
(flushed afterwards). Timings are shortened (heartbeat, staleness, sweeps) so recovery takes seconds.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.training import executor

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"

FAST = {"heartbeat_seconds": 0.3, "stale_after_seconds": 2.0, "requeue_after_seconds": 2.0,
        "sweep_every_seconds": 0.5}


@pytest.fixture
def e2e_settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    queue_url = None if db_url.startswith("sqlite") else REDIS_URL
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, queue_url=queue_url,
                        queue_name=f"e2e-{uuid.uuid4().hex[:10]}", auth="disabled", forecast_processes=0, **FAST)
    yield settings
    executor.get_queue(settings).huey.flush()
    executor.close_queue(settings)


@pytest.fixture
def api(e2e_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(e2e_settings)) as client:
        yield client


def _env(settings: Settings, **overrides: object) -> dict[str, str]:
    values = {"data_dir": settings.data_dir, "database_url": settings.database_url, "queue_url": settings.queue_url,
              "queue_name": settings.queue_name, "auth": settings.auth, **FAST, **overrides}
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATENTCAST_")}
    env.update({f"LATENTCAST_{k.upper()}": str(v) for k, v in values.items() if v is not None})
    env.update({"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    return env


@pytest.fixture
def start_worker(e2e_settings: Settings, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a worker process (settings overridable); every one still running is stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(**overrides: object) -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], cwd=ROOT,
                                env=_env(e2e_settings, **overrides), stdout=log, stderr=subprocess.STDOUT)
        proc.log = log  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.log.close()  # type: ignore[attr-defined]


def wait_for(check: Callable[[], object], timeout: float = 90.0, every: float = 0.05, what: str = "") -> object:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what or check}")

"""`latentcast serve` alone does everything: it starts one worker process beside the API (and a forecast solver
process) and stops them with itself."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.storage.db import make_engine
from tests.e2e.conftest import FAST, ROOT, wait_for
from tests.serving import free_port, start_server, stop_server
from tests.training_data import TINY, add_series

pytestmark = pytest.mark.slow


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_serve_runs_and_stops_its_worker(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'data' / 'latentcast.db'}"
    port = free_port()
    env = {f"LATENTCAST_{k.upper()}": str(v) for k, v in FAST.items()}
    env.update({"LATENTCAST_DATA_DIR": str(tmp_path / "data"), "LATENTCAST_AUTH": "disabled"})
    serve = start_server(["serve", "--port", str(port)], env, tmp_path / "serve.log", ready="/healthz", timeout=120)
    base = f"http://127.0.0.1:{port}"
    try:
        children = wait_for(lambda: c if len(c := _children(serve.pid)) >= 2 else None, timeout=30,
                            what="the worker and the solver process")
        workers = {pid for pid in children if "service.cli worker" in _cmdline(pid)}
        assert len(workers) == 1
        assert any("multiprocessing" in _cmdline(pid) for pid in children - workers), "no forecast solver process"
        engine = make_engine(db_url)
        add_series(engine, "room-1", seed=1)
        engine.dispose()
        response = httpx.post(f"{base}/v1/models", json={"name": "rooms", "series": ["room-1"], "config": TINY})
        assert response.status_code == 202, response.text
        job_id = response.json()["job"]["id"]

        def finished() -> dict | None:
            job = httpx.get(f"{base}/v1/jobs/{job_id}").json()
            return job if job["status"] not in ("queued", "running") else None

        assert wait_for(finished, timeout=120, every=0.2, what="the job")["status"] == "succeeded"
        assert stop_server(serve, timeout=90) == 0
        assert not any(_alive(pid) for pid in workers), "serve left its worker running"
        # The solver process exits when its pipe from serve closes, so just after serve does.
        wait_for(lambda: not any(_alive(pid) for pid in children), timeout=10, every=0.1,
                 what="serve's other children to stop")
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_an_orphaned_worker_stops(tmp_path: Path) -> None:
    """serve's worker watches serve: if serve dies without stopping it (SIGKILL), the worker stops by itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATENTCAST_")}
    env.update({"LATENTCAST_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    # A shell stands in for serve: it starts the worker as its child, naming itself as the parent to watch.
    parent = subprocess.Popen(["sh", "-c", f'exec 1>"{tmp_path}/worker.log" 2>&1; '
                               f'"{sys.executable}" -m service.cli worker --parent-pid $$ & wait'], cwd=ROOT, env=env)
    workers = wait_for(lambda: _children(parent.pid), timeout=10, what="the worker process")
    wait_for(lambda: b"consuming queue" in (tmp_path / "worker.log").read_bytes(), timeout=120, every=0.2,
             what="the worker to start")
    parent.kill()
    parent.wait()
    wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=15, every=0.1, what="the orphan to stop")
    assert b"is gone: stopping the worker" in (tmp_path / "worker.log").read_bytes()

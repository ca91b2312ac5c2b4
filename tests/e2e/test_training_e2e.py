"""Training through real worker processes: SQLite + SqliteHuey, and PostgreSQL + Redis.

Follow progress (polling and the event stream) and a lost message; cancel, then a worker stopped with SIGTERM; a
worker killed with SIGKILL. Related scenarios share a worker: each worker start-up imports torch (seconds).
"""

import json
import signal
import threading
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update

from model import from_bytes
from service.storage import jobs
from service.storage.tables import jobs as jobs_table
from service.storage.tables import models as models_table
from tests.e2e.conftest import wait_for
from tests.training_data import TINY, add_series

pytestmark = pytest.mark.slow


def _post(api: TestClient, **config: object) -> dict:
    response = api.post("/v1/models", json={"name": "rooms", "series": ["room-1", "room-2"],
                                            "config": {**TINY, **config}})
    assert response.status_code == 202, response.text
    return response.json()["job"]


def _job(api: TestClient, job_id: str) -> dict:
    return api.get(f"/v1/jobs/{job_id}").json()


def _finished(api: TestClient, job_id: str) -> dict | None:
    job = _job(api, job_id)
    return job if job["status"] in jobs.FINISHED else None


def _running_at_epoch(api: TestClient, job_id: str, epoch: int = 1) -> dict | None:
    job = _job(api, job_id)
    assert job["status"] in ("queued", "running"), job
    return job if job["status"] == "running" and job["progress"] and job["progress"]["epoch"] >= epoch else None


def _stream(api: TestClient, job_id: str, out: list) -> None:
    name = None
    with api.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[6:])))


@pytest.fixture
def two_series(engine: Engine) -> None:
    add_series(engine, "room-1", ("temp", "hum"), n=300, seed=1)
    add_series(engine, "room-2", ("hum", "temp"), n=300, seed=2)


def test_train_follow_and_download(api: TestClient, engine: Engine, start_worker,
                                   two_series: None) -> None:
    # Beside it, a job whose row was committed but whose message never reached the queue (the API process died in
    # between): the worker's sweeper must find and send it.
    lost, _ = jobs.create_training(engine, job_id=str(uuid.uuid4()), name="lost", config={**TINY, "epochs": 1},
                                   channels=["temp", "hum"], series=["room-1"])
    with engine.begin() as conn:
        conn.execute(update(jobs_table).where(jobs_table.c.id == lost.id).values(enqueued_at=lost.enqueued_at - 10**7))
    start_worker()
    job = _post(api, epochs=30)  # long enough (a few seconds) for several 0.25 s event-stream polls
    events: list = []
    streamer = threading.Thread(target=_stream, args=(api, job["id"], events))
    streamer.start()
    seen = []  # what polling saw while it ran
    done = wait_for(lambda: seen.append(_job(api, job["id"])) or _finished(api, job["id"]), what="the job to end")
    streamer.join(30)

    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1 and done["progress"]["epoch"] == 30 and done["finished_at"] is not None
    midway = [j for j in seen if j["status"] == "running" and j["progress"] and j["progress"]["epoch"] < 30]
    assert midway, "polling never saw the job running with partial progress"
    assert midway[0]["progress"]["eta_s"] > 0

    names = [name for name, _ in events]
    assert names[-1] == "end" and events[-1][1]["status"] == "succeeded"
    epochs = [data["progress"]["epoch"] for name, data in events if name == "progress" and data["progress"]]
    assert epochs == sorted(epochs) and len(epochs) >= 2, epochs  # one event per progress update, in order

    version = api.get("/v1/models/rooms/versions/1").json()
    assert version["status"] == "ready" and version["channels"] == ["temp", "hum"]
    assert version["metrics"]["val_mse"] is not None
    fitted = from_bytes(api.get("/v1/models/rooms/versions/1/artifact").content)
    assert fitted.channels == ("temp", "hum")

    recovered = wait_for(lambda: _finished(api, lost.id), what="the job whose message was lost")
    assert recovered["status"] == "succeeded" and recovered["attempts"] == 1


def test_cancel_then_stop_the_worker(api: TestClient, start_worker, two_series: None) -> None:
    worker = start_worker()
    job = _post(api, epochs=500)
    at = wait_for(lambda: _running_at_epoch(api, job["id"]), what="the first epoch")["progress"]["epoch"]
    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
    done = wait_for(lambda: _finished(api, job["id"]), timeout=30, what="the cancel")
    assert done["status"] == "cancelled"
    # Progress is written after an epoch and the stop is checked before every batch: at most the epoch under way
    # when the cancel arrived, plus the one whose report raced it, completes.
    assert done["progress"]["epoch"] <= at + 2 < 500
    version = api.get("/v1/models/rooms/versions/1").json()
    assert version["status"] == "cancelled"
    assert api.get("/v1/models/rooms/versions/1/artifact").status_code == 409
    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409

    # SIGTERM while training: the worker hands its job back to the queue and exits cleanly.
    second = _post(api, epochs=500)
    wait_for(lambda: _running_at_epoch(api, second["id"]), what="the second job's first epoch")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    back = _job(api, second["id"])
    assert back["status"] == "queued" and back["attempts"] == 0, back
    assert api.get("/v1/models/rooms/versions/2").json()["status"] == "queued"


def test_killed_worker_job_is_requeued_and_succeeds_once(api: TestClient, engine: Engine, start_worker,
                                                         two_series: None) -> None:
    # Two workers from the start (so the test waits for one start-up, not two): one takes the job and is killed
    # with SIGKILL mid-training; the other's sweeper finds the stale heartbeat and runs the job again.
    workers = {proc.pid: proc for proc in (start_worker(), start_worker())}
    job = _post(api, epochs=30)
    wait_for(lambda: _running_at_epoch(api, job["id"]), what="the first epoch")
    owner = workers.pop(int(jobs.get_job(engine, job["id"]).worker.rsplit(":", 1)[1]))
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    assert _job(api, job["id"])["status"] == "running"  # nobody told the database

    done = wait_for(lambda: _finished(api, job["id"]), what="the retried job")
    assert done["status"] == "succeeded" and done["attempts"] == 2, done
    survivor = next(iter(workers.values()))
    assert jobs.get_job(engine, job["id"]).worker.endswith(f":{survivor.pid}")
    versions = api.get("/v1/models/rooms").json()["versions"]
    assert [(v["version"], v["status"]) for v in versions] == [(1, "ready")]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(models_table.c.artifact.is_not(None))).scalar() == 1
    assert from_bytes(api.get("/v1/models/rooms/versions/1/artifact").content).channels == ("temp", "hum")

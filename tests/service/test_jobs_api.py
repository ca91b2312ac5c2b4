"""/v1/jobs over HTTP: list, get, cancel, the event stream (jobs driven through service.storage.jobs here)."""

import json
import threading
import time

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.storage import jobs
from tests.training_data import TINY, add_series


def _train(client: TestClient) -> dict:
    response = client.post("/v1/models", json={"name": "rooms", "series": ["room-1"], "config": TINY})
    assert response.status_code == 202, response.text
    return response.json()["job"]


def _events(client: TestClient, job_id: str) -> list[tuple[str, dict]]:
    events, name = [], None
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: "):])))
    return events


def test_list_get_and_filter(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1")
    made = [_train(client) for _ in range(3)]
    jobs.claim(engine, made[0]["id"], "w")
    listing = client.get("/v1/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in listing["items"]] == [made[2]["id"], made[1]["id"]]
    rest = client.get("/v1/jobs", params={"limit": 2, "cursor": listing["next_cursor"]}).json()
    assert [j["id"] for j in rest["items"]] == [made[0]["id"]] and rest["next_cursor"] is None
    running = client.get("/v1/jobs", params={"status": "running"}).json()["items"]
    assert [j["id"] for j in running] == [made[0]["id"]] and running[0]["attempts"] == 1
    assert client.get("/v1/jobs", params={"status": "sleeping"}).status_code == 422
    bad_cursor = client.get("/v1/jobs", params={"cursor": "!!!"})
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["details"][0]["loc"] == ["query", "cursor"]
    assert client.get(f"/v1/jobs/{made[1]['id']}").json()["status"] == "queued"
    missing = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_job"


def test_cancel(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1")
    queued, running = _train(client), _train(client)
    response = client.post(f"/v1/jobs/{queued['id']}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    assert client.get("/v1/models/rooms/versions/1").json()["status"] == "cancelled"
    finished = client.post(f"/v1/jobs/{queued['id']}/cancel")
    assert finished.status_code == 409 and finished.json()["error"]["code"] == "job_finished"

    jobs.claim(engine, running["id"], "w")
    response = client.post(f"/v1/jobs/{running['id']}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "running"  # the worker stops it
    assert jobs.heartbeat(engine, running["id"], "w") is True
    assert client.post("/v1/jobs/00000000-0000-0000-0000-000000000000/cancel").status_code == 404


def test_event_stream_follows_progress_to_the_end(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1")
    job = _train(client)

    def drive() -> None:  # a stand-in worker, slow enough for the stream to see each step
        time.sleep(0.5)
        jobs.claim(engine, job["id"], "w")
        for epoch in (1, 2):
            time.sleep(0.6)
            jobs.heartbeat(engine, job["id"], "w", {"epoch": epoch, "epochs": 2, "loss": 1.0 / epoch,
                                                   "val_mse": 0.5, "elapsed_s": epoch, "eta_s": 2 - epoch})
        time.sleep(0.6)
        jobs.finish(engine, job["id"], "w", "failed", error="training failed: test")

    driver = threading.Thread(target=drive)
    driver.start()
    events = _events(client, job["id"])
    driver.join()
    names = [name for name, _ in events]
    assert names[-1] == "end" and set(names[:-1]) == {"progress"}
    assert events[0][1]["status"] == "queued"
    epochs = [data["progress"]["epoch"] for _, data in events if data["progress"]]
    assert epochs[:2] == [1, 2]
    assert events[-1][1]["status"] == "failed" and events[-1][1]["error"] == "training failed: test"


def test_event_stream_of_a_finished_job_is_one_end_event(client: TestClient, engine: Engine) -> None:
    add_series(engine, "room-1")
    job = _train(client)
    client.post(f"/v1/jobs/{job['id']}/cancel")
    assert [(name, data["status"]) for name, data in _events(client, job["id"])] == [("end", "cancelled")]
    assert client.get("/v1/jobs/00000000-0000-0000-0000-000000000000/events").status_code == 404


def test_openapi_declares_the_statuses(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/models"]["post"]["responses"]) >= {"202", "401", "403", "404", "409", "422"}
    assert set(paths["/v1/jobs/{job_id}/cancel"]["post"]["responses"]) >= {"202", "404", "409"}
    assert "text/event-stream" in paths["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    artifact = paths["/v1/models/{name}/versions/{version}/artifact"]["get"]["responses"]
    assert "application/octet-stream" in artifact["200"]["content"] and "409" in artifact

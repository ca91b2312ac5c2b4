"""Text a client sends that a key, name or id can never hold (NUL among it, which PostgreSQL cannot store or compare)
is refused with 422 naming the field before it reaches the database, on both backends."""

import pytest
from fastapi.testclient import TestClient

OBS = {"t": [1], "values": {"a": [1]}}
CASES = [
    ("GET", "/v1/series?prefix=%00", None, ["query", "prefix"]),
    ("GET", "/v1/series?prefix=a%20b", None, ["query", "prefix"]),
    ("GET", "/v1/series/%00/forecast?at=1", None, ["path", "key"]),
    ("GET", "/v1/series/room/forecast?at=1&model=%00", None, ["query", "model"]),
    ("POST", "/v1/forecast", {"model": "\u0000", "observations": OBS, "at": [1]}, ["body", "model"]),
    ("POST", "/v1/forecast", {"model": "a b", "observations": OBS, "at": [1]}, ["body", "model"]),
    ("POST", "/v1/models", {"name": "m", "series": ["\u0000"]}, ["body", "series", 0]),
    ("GET", "/v1/jobs/%00", None, ["path", "job_id"]),
    ("POST", "/v1/jobs/%00/cancel", None, ["path", "job_id"]),
    ("GET", "/v1/jobs/%00/events", None, ["path", "job_id"]),
    ("POST", "/v1/series", {"key": "d", "channels": ["a"], "description": "x\u0000y"}, ["body", "description"]),
    ("PATCH", "/v1/series/room", {"description": "\u0000"}, ["body", "description"]),
]


@pytest.mark.parametrize(("method", "path", "body", "loc"), CASES)
def test_text_no_key_name_or_id_holds_is_422(client: TestClient, method: str, path: str, body: dict | None,
                                             loc: list) -> None:
    assert client.post("/v1/series", json={"key": "room", "channels": ["a"]}).status_code == 201
    r = client.request(method, path, json=body) if body is not None else client.request(method, path)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["loc"] == loc
    assert [s["key"] for s in client.get("/v1/series").json()["items"]] == ["room"]
    assert client.get("/v1/series/room").json()["description"] == ""

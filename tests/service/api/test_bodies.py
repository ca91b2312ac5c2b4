"""A request body that is not JSON gets one answer on every route that takes JSON, whichever code reads it
(FastAPI for the pydantic-typed routes, service.ingest for observations and inline forecasts): 422
validation_error at ["body"], "invalid JSON: <reason>"."""

import pytest
from fastapi.testclient import TestClient

ROUTES = (("POST", "/v1/series"), ("PATCH", "/v1/series/room"), ("POST", "/v1/series/room/observations"),
          ("POST", "/v1/forecast"), ("POST", "/v1/models"))
NOT_JSON = {
    "truncated": (b'{"key":', "invalid JSON: Expecting value: line 1 column 8 (char 7)"),
    "trailing comma": (b'{"a": 1,}', "invalid JSON: Expecting property name enclosed in double quotes: "
                                     "line 1 column 9 (char 8)"),
    "nested 100000 deep": (b"[" * 100_000 + b"]" * 100_000, "invalid JSON: nested too deeply"),
    "objects nested 5000 deep": (b'{"a":' * 5000 + b"1" + b"}" * 5000, "invalid JSON: nested too deeply"),
    "a 5000-digit number": (b'{"a": ' + b"1" * 5000 + b"}", "invalid JSON: Exceeds the limit (4300 digits) for "
                                                            "integer string conversion: value has 5000 digits"),
    "not UTF-8": (b'{"key": "\xff"}', "invalid JSON: 'utf-8' codec can't decode byte 0xff in position 9: "
                                      "invalid start byte"),
}


@pytest.fixture
def room(client: TestClient) -> TestClient:
    assert client.post("/v1/series", json={"key": "room", "channels": ["temp"]}).status_code == 201
    return client


@pytest.mark.parametrize("case", NOT_JSON)
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_body_that_is_not_json_is_422_at_body(room: TestClient, method: str, path: str, case: str) -> None:
    body, message = NOT_JSON[case]
    r = room.request(method, path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json() == {"error": {"code": "validation_error", "message": f"body: {message}",
                                  "details": [{"loc": ["body"], "msg": message}]}}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_an_empty_body_is_422_at_body(room: TestClient, method: str, path: str) -> None:
    r = room.request(method, path, content=b"", headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["loc"] == ["body"]


def test_nothing_was_written(room: TestClient) -> None:
    for method, path in ROUTES:
        room.request(method, path, content=NOT_JSON["nested 100000 deep"][0],
                     headers={"content-type": "application/json"})
    assert [s["key"] for s in room.get("/v1/series").json()["items"]] == ["room"]
    assert room.get("/v1/series/room").json()["counts"] == {"temp": 0}
    assert room.get("/v1/models").json()["items"] == [] and room.get("/v1/jobs").json()["items"] == []

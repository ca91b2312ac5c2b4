"""Forecast refusals that need no trained model: unknown series, no model, bad queries, scopes (both backends)."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service import storage
from service.storage import keys

URL = "/v1/series/room/forecast"


@pytest.fixture
def room(engine: Engine) -> storage.SeriesRecord:
    rec = storage.create_series(engine, "room", ["temp"], "", {})
    t = np.arange(5, dtype=np.int64) * 1_000_000 + 1_767_225_600_000_000
    storage.upsert_observations(engine, rec.id, rec.channels, np.zeros(5, dtype=np.int64), t, np.ones(5))
    return rec


def _error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code
    return body


def test_unknown_series_is_404(client: TestClient) -> None:
    body = _error(client.get("/v1/series/nope/forecast", params={"at": "0"}), 404, "not_found")
    assert "nope" in body["message"]


def test_series_without_model_is_404_no_model(client: TestClient, room: storage.SeriesRecord) -> None:
    body = _error(client.get(URL, params={"at": "2026-01-01T00:00:01Z"}), 404, "no_model")
    assert "room" in body["message"]
    body = _error(client.get(URL, params={"at": "2026-01-01T00:00:01Z", "model": "ghost"}), 404, "no_model")
    assert "ghost" in body["message"]


@pytest.mark.parametrize(("params", "loc", "text"), [
    ({}, ["query", "at"], "no query times"),
    ({"at": "2026-01-01T00:00:01 01:00"}, ["query", "at", 0], "%2B"),
    ({"start": "0", "end": "10", "step": "PT"}, ["query", "step"], "not a duration"),
    ({"at": "1", "quantiles": "0.5,1.5"}, ["query", "quantiles", 1], "between 0 and 1"),
    ({"at": "1", "samples": "0"}, ["query", "samples"], ""),
    ({"at": "1", "samples": "1001"}, ["query", "samples"], ""),
    ({"at": "1", "context": "-1"}, ["query", "context"], "not a duration"),
])
def test_bad_queries_are_422_naming_the_field(client: TestClient, room: storage.SeriesRecord, params: dict,
                                              loc: list, text: str) -> None:
    body = _error(client.get(URL, params=params), 422, "validation_error")
    assert body["details"][0]["loc"] == loc
    assert text in body["details"][0]["msg"]


def test_needs_a_key_with_read_scope(anon_client: TestClient, engine: Engine, room: storage.SeriesRecord) -> None:
    _error(anon_client.get(URL, params={"at": "1"}), 401, "unauthorized")
    writer = keys.create_key(engine, "writer", ["write"])
    r = anon_client.get(URL, params={"at": "1"}, headers={"Authorization": f"Bearer {writer}"})
    _error(r, 403, "forbidden")


def test_openapi_declares_every_status(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    get = paths["/v1/series/{key}/forecast"]["get"]
    assert set(get["responses"]) == {"200", "401", "403", "404", "409", "422", "429", "503"}
    post = paths["/v1/forecast"]["post"]
    assert set(post["responses"]) == {"200", "401", "403", "404", "409", "413", "422", "429", "503"}
    assert post["requestBody"]["content"]["application/json"]["schema"]["required"] == ["model", "observations",
                                                                                        "at"]
    for route in (get, post):
        assert "past the model's trained horizon" in route["responses"]["422"]["description"]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("SeriesForecastOut", "InlineForecastOut"):
        assert "warnings" in schemas[name]["required"]
        assert schemas[name]["properties"]["warnings"]["type"] == "array"


@pytest.mark.parametrize(("field", "value", "loc", "text"), [
    ("version", 9223372036854775808, ["body", "version"], "from 1 to 2147483647"),
    ("version", 2**31, ["body", "version"], "from 1 to 2147483647"),
    ("version", 0, ["body", "version"], "from 1 to 2147483647"),
    ("seed", 2**63, ["body", "seed"], "between 0 and"),
    ("samples", 10**400, ["body", "samples"], "between 1 and"),
    ("quantiles", [10**400], ["body", "quantiles", 0], "not strictly between 0 and 1"),
    ("quantiles", [-(10**400)], ["body", "quantiles", 0], "not strictly between 0 and 1"),
    ("at", [10**400], ["body", "at", 0], "out of range"),
])
def test_inline_numbers_out_of_range_are_422_naming_the_field(client: TestClient, field: str, value: object,
                                                              loc: list, text: str) -> None:
    """Checked before any model is looked up: no model exists here."""
    body = {"model": "m", "observations": {"t": [1], "values": {"temp": [1]}}, "at": [1], field: value}
    err = _error(client.post("/v1/forecast", json=body), 422, "validation_error")
    assert err["details"][0]["loc"] == loc
    assert text in err["details"][0]["msg"]
    assert len(err["message"]) < 300

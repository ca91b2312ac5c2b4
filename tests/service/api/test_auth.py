"""API keys at the HTTP edge: 401 for no, bad or revoked keys, 403 for a missing scope; open routes stay open."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.app import create_app
from service.config import Settings
from service.storage import keys

UNAUTHORIZED = {"code": "unauthorized", "details": []}


@pytest.fixture
def app_client(settings: Settings, admin_key: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/series", json={"key": "s", "channels": ["v"]}, headers={"Authorization": f"Bearer {admin_key}"})
        assert r.status_code == 201
        yield c


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer lc_not-a-key"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}])
def test_no_or_bad_key_401(app_client: TestClient, headers: dict[str, str]) -> None:
    for r in (app_client.get("/v1/series", headers=headers),
              app_client.post("/v1/series/s/observations", json={"t": [0], "values": {"v": [1]}}, headers=headers)):
        assert r.status_code == 401
        assert {k: r.json()["error"][k] for k in ("code", "details")} == UNAUTHORIZED
        assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_key_401(app_client: TestClient, engine: Engine) -> None:
    key = keys.create_key(engine, "temp", ["read"])
    assert app_client.get("/v1/series", headers=_auth(key)).status_code == 200
    keys.revoke_key(engine, "temp")
    r = app_client.get("/v1/series", headers=_auth(key))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_read_only_key_cannot_write_403(app_client: TestClient, engine: Engine) -> None:
    key = keys.create_key(engine, "reader", ["read"])
    assert app_client.get("/v1/series/s/observations", headers=_auth(key)).status_code == 200
    for r in (app_client.post("/v1/series/s/observations", json={"t": [0], "values": {"v": [1]}}, headers=_auth(key)),
              app_client.post("/v1/series", json={"key": "t", "channels": ["v"]}, headers=_auth(key)),
              app_client.patch("/v1/series/s", json={"description": "x"}, headers=_auth(key)),
              app_client.delete("/v1/series/s/observations", headers=_auth(key)),
              app_client.delete("/v1/series/s", headers=_auth(key))):
        assert r.status_code == 403, r.request
        assert r.json()["error"]["code"] == "forbidden" and "'write'" in r.json()["error"]["message"]
    assert app_client.get("/v1/series/s/observations", headers=_auth(key)).json()["t"] == []


def test_write_only_key_cannot_read_403(app_client: TestClient, engine: Engine) -> None:
    key = keys.create_key(engine, "writer", ["write"])
    r = app_client.post("/v1/series/s/observations", json={"t": [0], "values": {"v": [1]}}, headers=_auth(key))
    assert r.status_code == 200
    assert app_client.get("/v1/series/s", headers=_auth(key)).status_code == 403


def test_auth_disabled_lets_everyone_in(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"auth": "disabled"}))) as c:
        assert c.post("/v1/series", json={"key": "s", "channels": ["v"]}).status_code == 201
        assert c.get("/v1/series/s").status_code == 200


def test_docs_and_openapi_need_no_key(anon_client: TestClient) -> None:
    assert anon_client.get("/docs").status_code == 200
    assert anon_client.get("/openapi.json").status_code == 200
    assert anon_client.get("/v1/series").status_code == 401


# The scope each route needs, for every route under /v1: a route added without a line here fails the matrix test.
ROUTE_SCOPES = {
    ("get", "/v1/series"): "read",
    ("post", "/v1/series"): "write",
    ("get", "/v1/series/{key}"): "read",
    ("patch", "/v1/series/{key}"): "write",
    ("delete", "/v1/series/{key}"): "write",
    ("get", "/v1/series/{key}/observations"): "read",
    ("post", "/v1/series/{key}/observations"): "write",
    ("delete", "/v1/series/{key}/observations"): "write",
    ("get", "/v1/series/{key}/forecast"): "read",
    ("post", "/v1/forecast"): "read",  # a POST that only reads
    ("get", "/v1/models"): "read",
    ("post", "/v1/models"): "write",
    ("get", "/v1/models/{name}"): "read",
    ("delete", "/v1/models/{name}"): "write",
    ("get", "/v1/models/{name}/versions/{version}"): "read",
    ("delete", "/v1/models/{name}/versions/{version}"): "write",
    ("get", "/v1/models/{name}/versions/{version}/artifact"): "read",
    ("get", "/v1/jobs"): "read",
    ("get", "/v1/jobs/{job_id}"): "read",
    ("get", "/v1/jobs/{job_id}/events"): "read",
    ("post", "/v1/jobs/{job_id}/cancel"): "write",
    ("get", "/v1/keys"): "admin",
    ("post", "/v1/keys"): "admin",
    ("post", "/v1/keys/{name}/revoke"): "admin",
}
_PATH_VALUES = {"key": "nope", "name": "nope", "version": "1", "job_id": "00000000-0000-0000-0000-000000000000"}


def test_every_route_needs_its_scope_and_no_other(anon_client: TestClient, engine: Engine) -> None:
    doc = anon_client.get("/openapi.json").json()
    operations = {(method, path) for path, ops in doc["paths"].items() if path.startswith("/v1/") for method in ops}
    assert operations == set(ROUTE_SCOPES)
    holders = {scope: keys.create_key(engine, f"only-{scope}", [scope]) for scope in ("read", "write", "admin")}
    for (method, path), scope in ROUTE_SCOPES.items():
        url = path.format(**_PATH_VALUES)
        body = {"json": {}} if method in ("post", "patch") else {}
        other = "write" if scope == "read" else "read"
        r = anon_client.request(method, url, headers=_auth(holders[other]), **body)
        assert r.status_code == 403, (method, path, other, r.status_code)
        assert r.json()["error"]["message"] == f"this API key lacks the '{scope}' scope", (method, path)
        r = anon_client.request(method, url, headers=_auth(holders[scope]), **body)
        assert r.status_code not in (401, 403), (method, path, scope, r.text)
        assert anon_client.request(method, url, **body).status_code == 401, (method, path)

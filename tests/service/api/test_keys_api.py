"""/v1/keys: an admin creates, lists and revokes keys over HTTP; the key is in the create answer alone."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from service.storage import keys
from service.storage.tables import api_keys


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_create_list_revoke(client: TestClient, engine: Engine) -> None:
    r = client.post("/v1/keys", json={"name": "ci", "scopes": ["read", "write"]})
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert key.startswith("lc_") and created["key_start"] == key[:8]
    assert created["scopes"] == ["read", "write"] and created["revoked_at"] is None
    # the new key works, with its scopes and no more
    assert client.get("/v1/series", headers=_auth(key)).status_code == 200
    assert client.get("/v1/keys", headers=_auth(key)).status_code == 403

    listed = client.get("/v1/keys").json()
    assert [k["name"] for k in listed["items"]] == ["ci", "test-admin"] and listed["next_cursor"] is None
    assert listed["items"][0] == {k: v for k, v in created.items() if k != "key"}
    assert key not in client.get("/v1/keys").text  # never the key itself
    with engine.connect() as conn:  # nor stored: its hash and first characters only
        stored = [str(v) for row in conn.execute(select(api_keys)) for v in row]
    assert not any(key in v for v in stored)

    r = client.post("/v1/keys/ci/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert client.get("/v1/series", headers=_auth(key)).status_code == 401
    assert client.get("/v1/keys").json()["items"][0]["revoked_at"] == r.json()["revoked_at"]


def test_the_cli_and_the_api_see_the_same_keys(client: TestClient, engine: Engine) -> None:
    made = keys.create_key(engine, "offline", ["read"])
    assert "offline" in [k["name"] for k in client.get("/v1/keys").json()["items"]]
    assert client.post("/v1/keys/offline/revoke").status_code == 200
    assert keys.scopes_for(engine, made) is None
    assert [k.revoked_at is not None for k in keys.list_keys(engine) if k.name == "offline"] == [True]


def test_taken_name_409(client: TestClient) -> None:
    assert client.post("/v1/keys", json={"name": "dup", "scopes": ["read"]}).status_code == 201
    client.post("/v1/keys/dup/revoke")
    r = client.post("/v1/keys", json={"name": "dup", "scopes": ["admin"]})  # revoked names are not reused either
    assert r.status_code == 409
    assert r.json()["error"] == {"code": "key_exists", "message": "a key named 'dup' exists already", "details": []}


def test_unknown_and_revoked_names(client: TestClient) -> None:
    r = client.post("/v1/keys/ghost/revoke")
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "no_key", "message": "no key named 'ghost'", "details": []}
    client.post("/v1/keys", json={"name": "once", "scopes": ["read"]})
    assert client.post("/v1/keys/once/revoke").status_code == 200
    r = client.post("/v1/keys/once/revoke")
    assert r.status_code == 409 and r.json()["error"]["code"] == "key_revoked"


@pytest.mark.parametrize(("body", "loc"), [
    ({"name": "x", "scopes": ["root"]}, ["body", "scopes", 0]),
    ({"name": "x", "scopes": []}, ["body", "scopes"]),
    ({"name": "x", "scopes": "read"}, ["body", "scopes"]),
    ({"name": "x"}, ["body", "scopes"]),
    ({"name": "-x", "scopes": ["read"]}, ["body", "name"]),
    ({"name": "a" * 129, "scopes": ["read"]}, ["body", "name"]),
    ({"name": "x\u0000", "scopes": ["read"]}, ["body", "name"]),
    ({"scopes": ["read"]}, ["body", "name"]),
    ({"name": "x", "scopes": ["read"], "extra": 1}, ["body", "extra"]),
])
def test_bad_bodies_422_name_the_field(client: TestClient, body: dict, loc: list) -> None:
    r = client.post("/v1/keys", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["loc"] == loc
    assert [k["name"] for k in client.get("/v1/keys").json()["items"]] == ["test-admin"]


def test_bad_path_name_422(client: TestClient) -> None:
    r = client.post("/v1/keys/%00/revoke")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["path", "name"]


def test_only_admin_keys_manage_keys(client: TestClient, engine: Engine) -> None:
    for scopes in (["read"], ["write"], ["read", "write"]):
        holder = keys.create_key(engine, "-".join(scopes) + "-holder", scopes)
        for method, path, body in (("get", "/v1/keys", None), ("post", "/v1/keys", {"name": "n", "scopes": ["admin"]}),
                                   ("post", "/v1/keys/test-admin/revoke", None)):
            r = client.request(method, path, json=body, headers=_auth(holder))
            assert r.status_code == 403 and r.json()["error"]["message"] == "this API key lacks the 'admin' scope"
    assert [k["revoked_at"] for k in client.get("/v1/keys").json()["items"] if k["name"] == "test-admin"] == [None]

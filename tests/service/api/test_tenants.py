"""Tenants: a key limited to a series-key prefix sees, changes, trains on and forecasts nothing outside it, and
what lies outside answers exactly as what does not exist (404), so that existence does not leak.

The matrix runs every route of the app (enumerated from the app, so a new route fails until it is added here)
as (own prefix, another prefix, no key, wrong scope)."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.app import create_app
from service.config import Settings
from service.storage import jobs, keys
from service.times.timefmt import format_time
from tests.service.forecast_support import T0, S, add_series, publish, toy_artifact, toy_sequence
from tests.training_data import TINY

TENANTS = ("acme-", "beta-")
GHOST_JOB = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Target:
    """The names of one tenant's things (or of things that do not exist, with the same shape)."""

    series: str
    model: str
    done_job: str  # cancelled: its event stream ends at once
    live_job: str  # queued: it can be cancelled


@dataclass
class World:
    own: Target  # acme's
    other: Target  # beta's
    ghost: Target  # beta-looking names that nothing has
    keys: dict[str, str]  # "read", "write": acme's keys with that scope alone
    last_t: str  # the last observation's time of every series


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def world(engine: Engine) -> World:
    t_s, values = toy_sequence(np.random.default_rng(0), 1.0)
    targets = {}
    for tenant in TENANTS:
        add_series(engine, f"{tenant}room", t_s, values)
        publish(engine, f"{tenant}m", 1, toy_artifact(), [f"{tenant}room"])
        made = {}
        for kind in ("done", "live"):
            job, _ = jobs.create_training(engine, job_id=str(uuid.uuid4()), name=f"{tenant}m", config={},
                                          channels=["temp"], series=[f"{tenant}room"], tenant=tenant)
            made[kind] = job.id
        jobs.request_cancel(engine, made["done"])
        targets[tenant] = Target(f"{tenant}room", f"{tenant}m", made["done"], made["live"])
    return World(own=targets["acme-"], other=targets["beta-"],
                 ghost=Target("beta-ghost-room", "beta-ghost-m", GHOST_JOB, GHOST_JOB),
                 keys={scope: keys.create_key(engine, f"acme-{scope}", [scope], prefix="acme-")
                       for scope in ("read", "write")},
                 last_t=format_time(T0 + int(round(float(t_s[-1]) * S))))


Request = Callable[[World, Target], dict[str, Any]]


def _get(url: str, **params: Any) -> Request:
    return lambda w, t: {"method": "GET", "url": url.format(t=t), "params": params}


def _call(method: str, url: str, json: Any = None) -> Request:
    return lambda w, t: {"method": method, "url": url.format(t=t),
                         "json": json(w, t) if callable(json) else json}


@dataclass(frozen=True)
class Case:
    scope: str
    request: Request
    own: int  # the status with the tenant's own things
    # "hidden": as for things that do not exist; "list": 200 naming none of the other tenant's things;
    # 403: a creation outside the prefix, refused
    other: str | int = "hidden"
    # a request at the other tenant that cannot be answered "hidden" alone (a model name inside the prefix on the
    # other tenant's series)
    also: Request | None = None


_OBS = {"t": [1_767_225_700], "values": {"temp": [1.0]}}
_INLINE = lambda w, t: {"model": t.model, "at": [w.last_t],  # noqa: E731
                        "observations": [{"t": w.last_t, "values": {"temp": 1.0}}]}

CASES: dict[tuple[str, str], Case] = {
    ("GET", "/v1/series"): Case("read", _get("/v1/series"), 200, "list"),
    ("POST", "/v1/series"): Case("write", _call("POST", "/v1/series", lambda w, t: {
        "key": t.series.split("-")[0] + "-new", "channels": ["temp"]}), 201, 403),
    ("GET", "/v1/series/{key}"): Case("read", _get("/v1/series/{t.series}"), 200),
    ("PATCH", "/v1/series/{key}"): Case("write", _call("PATCH", "/v1/series/{t.series}", {"description": "x"}), 200),
    ("DELETE", "/v1/series/{key}"): Case("write", _call("DELETE", "/v1/series/{t.series}"), 204),
    ("GET", "/v1/series/{key}/observations"): Case("read", _get("/v1/series/{t.series}/observations"), 200),
    ("POST", "/v1/series/{key}/observations"): Case("write", _call("POST", "/v1/series/{t.series}/observations",
                                                                   _OBS), 200),
    ("DELETE", "/v1/series/{key}/observations"): Case("write", _call("DELETE", "/v1/series/{t.series}/observations"),
                                                      200),
    ("GET", "/v1/series/{key}/forecast"): Case("read", lambda w, t: {
        "method": "GET", "url": f"/v1/series/{t.series}/forecast", "params": {"at": w.last_t}}, 200),
    ("POST", "/v1/forecast"): Case("read", _call("POST", "/v1/forecast", _INLINE), 200),
    ("GET", "/v1/models"): Case("read", _get("/v1/models"), 200, "list"),
    ("POST", "/v1/models"): Case("write", _call("POST", "/v1/models", lambda w, t: {
        "name": t.model, "series": [t.series], "config": TINY}), 202, 403,
        also=_call("POST", "/v1/models", lambda w, t: {"name": "acme-m", "series": [t.series], "config": TINY})),
    ("GET", "/v1/models/{name}"): Case("read", _get("/v1/models/{t.model}"), 200),
    ("DELETE", "/v1/models/{name}"): Case("write", _call("DELETE", "/v1/models/{t.model}"), 204),
    ("GET", "/v1/models/{name}/versions/{version}"): Case("read", _get("/v1/models/{t.model}/versions/1"), 200),
    ("DELETE", "/v1/models/{name}/versions/{version}"): Case("write", _call("DELETE",
                                                                            "/v1/models/{t.model}/versions/1"), 204),
    ("GET", "/v1/models/{name}/versions/{version}/artifact"): Case("read", _get("/v1/models/{t.model}/versions/1/"
                                                                                "artifact"), 200),
    ("GET", "/v1/jobs"): Case("read", _get("/v1/jobs"), 200, "list"),
    ("GET", "/v1/jobs/{job_id}"): Case("read", _get("/v1/jobs/{t.done_job}"), 200),
    ("GET", "/v1/jobs/{job_id}/events"): Case("read", _get("/v1/jobs/{t.done_job}/events"), 200),
    ("POST", "/v1/jobs/{job_id}/cancel"): Case("write", _call("POST", "/v1/jobs/{t.live_job}/cancel"), 202),
    # a tenant's key cannot hold the admin scope: key management is never a tenant's
    ("GET", "/v1/keys"): Case("admin", _get("/v1/keys"), 403, 403),
    ("POST", "/v1/keys"): Case("admin", _call("POST", "/v1/keys", {"name": "n", "scopes": ["read"],
                                                                   "prefix": "beta-"}), 403, 403),
    ("POST", "/v1/keys/{name}/revoke"): Case("admin", _call("POST", "/v1/keys/acme-read/revoke"), 403, 403),
}
# Routes that need no key, answered alike whoever asks.
OPEN = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
        ("GET", "/")}  # the dashboard's page: it holds no data; what it shows comes through the keyed routes


def test_every_route_is_in_the_matrix(settings: Settings) -> None:
    app = create_app(settings)
    # iter_route_contexts walks included routers too (FastAPI keeps them as routers inside app.routes)
    routes = {(method, context.path) for context in iter_route_contexts(app.routes)
              for method in getattr(context, "methods", None) or () if method != "HEAD"}
    assert len(routes) > 30
    assert routes == set(CASES) | OPEN


def _masked(text: str, target: Target) -> str:
    """A response's text with `target`'s names replaced by placeholders, so that the answers about two targets
    compare equal when they say the same thing."""
    for name, mark in sorted([(target.series, "<series>"), (target.model, "<model>"), (target.done_job, "<job>"),
                              (target.live_job, "<job>")], key=lambda p: -len(p[0])):
        text = text.replace(name, mark)
    return text


@pytest.fixture
def app_client(settings: Settings) -> TestClient:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_matrix(app_client: TestClient, world: World, engine: Engine, admin_key: str,
                      route: tuple[str, str]) -> None:
    case = CASES[route]
    c = app_client
    own_key = world.keys["read" if case.scope == "read" else "write"]
    wrong_key = world.keys["write" if case.scope == "read" else "read"]
    before = c.get("/v1/models/beta-m", headers=_auth(admin_key)).json(), c.get("/v1/series/beta-room",
                                                                               headers=_auth(admin_key)).json()

    # no key: 401, whatever is asked for
    r = c.request(**case.request(world, world.other))
    assert r.status_code == 401, (route, r.text)
    # wrong scope: 403, whatever is asked for
    for target in (world.own, world.other):
        r = c.request(**case.request(world, target), headers=_auth(wrong_key))
        assert r.status_code == 403 and f"lacks the '{case.scope}' scope" in r.json()["error"]["message"], route

    # another prefix
    r = c.request(**case.request(world, world.other), headers=_auth(own_key))
    if case.other == "hidden":
        ghost = c.request(**case.request(world, world.ghost), headers=_auth(own_key))
        assert r.status_code == ghost.status_code == 404, (route, r.text, ghost.text)
        assert _masked(r.text, world.other) == _masked(ghost.text, world.ghost), route
    elif case.other == "list":
        assert r.status_code == 200 and "beta-" not in r.text, (route, r.text)
    else:
        assert r.status_code == case.other, (route, r.text)
    if case.also is not None:
        r = c.request(**case.also(world, world.other), headers=_auth(own_key))
        ghost = c.request(**case.also(world, world.ghost), headers=_auth(own_key))
        assert r.status_code == ghost.status_code == 404, (route, r.text)
        assert _masked(r.text, world.other) == _masked(ghost.text, world.ghost), route
    # nothing of the other tenant's changed
    after = c.get("/v1/models/beta-m", headers=_auth(admin_key)).json(), c.get("/v1/series/beta-room",
                                                                              headers=_auth(admin_key)).json()
    assert after == before, route
    assert {j.status for j in jobs.list_jobs(engine, status=None, limit=100) if j.model_name == "beta-m"} == {
        "cancelled", "queued"}

    # own prefix: works
    r = c.request(**case.request(world, world.own), headers=_auth(own_key))
    assert r.status_code == case.own, (route, r.text)
    if case.other == "list":
        assert "acme-" in r.text, route


# --- beyond the matrix ------------------------------------------------------------------------------------------------

def test_list_prefix_is_narrowed_to_the_tenants(app_client: TestClient, world: World) -> None:
    headers = _auth(world.keys["read"])

    def keys_listed(prefix: str) -> list[str]:
        r = app_client.get("/v1/series", params={"prefix": prefix}, headers=headers)
        assert r.status_code == 200
        return [s["key"] for s in r.json()["items"]]

    assert keys_listed("beta-") == [] and keys_listed("b") == []
    assert keys_listed("acme-r") == ["acme-room"] and keys_listed("a") == ["acme-room"]
    assert keys_listed("") == ["acme-room"]


def test_a_model_named_inside_the_prefix_but_trained_outside_it_is_not_the_tenants(
        app_client: TestClient, world: World, admin_key: str) -> None:
    """An admin may name a model on beta's series `acme-x`: acme neither sees it nor its job, and its own training
    under that name gets a version of its own."""
    r = app_client.post("/v1/models", json={"name": "acme-x", "series": ["beta-room"], "config": TINY},
                        headers=_auth(admin_key))
    assert r.status_code == 202
    foreign_job = r.json()["job"]["id"]
    reader, writer = _auth(world.keys["read"]), _auth(world.keys["write"])
    assert [m["name"] for m in app_client.get("/v1/models", headers=reader).json()["items"]] == ["acme-m"]
    assert foreign_job not in app_client.get("/v1/jobs", headers=reader).text
    assert app_client.get("/v1/jobs", headers=reader).json()["items"]  # acme's own jobs are listed
    r = app_client.get("/v1/models/acme-x", headers=reader)
    assert r.status_code == 404 and r.json()["error"]["message"] == "no model named 'acme-x'"
    assert app_client.get(f"/v1/jobs/{foreign_job}", headers=reader).status_code == 404
    assert app_client.delete("/v1/models/acme-x", headers=writer).status_code == 404
    r = app_client.post("/v1/models", json={"name": "acme-x", "series": ["acme-room"], "config": TINY},
                        headers=writer)
    assert r.status_code == 202
    own = r.json()["model"]["version"]
    assert [v["version"] for v in app_client.get("/v1/models/acme-x", headers=reader).json()["versions"]] == [own]
    assert [m["name"] for m in app_client.get("/v1/models", headers=reader).json()["items"]] == ["acme-m", "acme-x"]
    assert app_client.get("/v1/models/acme-x/versions/1", headers=reader).status_code == 404
    assert app_client.delete("/v1/models/acme-x", headers=writer).status_code == 204  # its own version only
    assert app_client.get("/v1/models/acme-x/versions/1", headers=_auth(admin_key)).status_code == 200


def test_idempotency_keys_are_per_tenant(app_client: TestClient, world: World, engine: Engine) -> None:
    beta = keys.create_key(engine, "beta-write", ["write"], prefix="beta-")
    answers = {}
    for tenant, key in (("acme-", world.keys["write"]), ("beta-", beta)):
        body = {"name": f"{tenant}m", "series": [f"{tenant}room"], "config": TINY}
        r = app_client.post("/v1/models", json=body, headers={**_auth(key), "Idempotency-Key": "same"})
        assert r.status_code == 202, r.text  # neither collides with nor answers the other tenant's
        answers[tenant] = r.json()["job"]["id"]
        again = app_client.post("/v1/models", json=body, headers={**_auth(key), "Idempotency-Key": "same"})
        assert again.json()["job"]["id"] == answers[tenant]
    assert answers["acme-"] != answers["beta-"]


def test_training_on_a_series_prefix_stays_inside(app_client: TestClient, world: World) -> None:
    writer = _auth(world.keys["write"])

    def train(prefix: str) -> Any:
        return app_client.post("/v1/models", json={"name": "acme-p", "series_prefix": prefix, "config": TINY},
                               headers=writer)

    for outside in ("beta-", "beta-r", "b"):
        r = train(outside)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"] == [{"loc": ["body", "series_prefix"],
                                                 "msg": f"no series key starts with {outside!r}"}]
    r = train("a")  # a shorter prefix than the tenant's: its own series alone
    assert r.status_code == 202 and r.json()["job"]["model"] == {"name": "acme-p", "version": 1}
    versions = app_client.get("/v1/models/acme-p", headers=_auth(world.keys["read"])).json()["versions"]
    assert [v["series"] for v in versions] == [["acme-room"]]


def test_keys_with_a_prefix_over_http(client: TestClient, world: World) -> None:
    r = client.post("/v1/keys", json={"name": "gamma", "scopes": ["read", "write"], "prefix": "gamma-"})
    assert r.status_code == 201 and r.json()["prefix"] == "gamma-"
    key = r.json()["key"]
    assert {k["name"]: k["prefix"] for k in client.get("/v1/keys").json()["items"]}["gamma"] == "gamma-"
    assert client.get("/v1/series", headers=_auth(key)).json()["items"] == []
    assert client.post("/v1/series", json={"key": "gamma-1", "channels": ["a"]}, headers=_auth(key)).status_code == 201
    r = client.post("/v1/series", json={"key": "acme-1", "channels": ["a"]}, headers=_auth(key))
    assert r.status_code == 403 and r.json()["error"] == {
        "code": "forbidden", "details": [], "message": "this API key is limited to series keys starting with 'gamma-'"}
    r = client.post("/v1/keys", json={"name": "boss", "scopes": ["admin"], "prefix": "gamma-"})
    assert r.status_code == 422 and r.json()["error"]["details"] == [
        {"loc": ["body", "prefix"], "msg": "a key limited to a prefix cannot hold the admin scope"}]
    for bad in ("", "-x", "a b", "x" * 129):
        r = client.post("/v1/keys", json={"name": "bad", "scopes": ["read"], "prefix": bad})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["body", "prefix"], bad

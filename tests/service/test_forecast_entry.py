"""The forecasting entry: the routes' one forecasting call; the plan reads the version's row, never its model; only a
solver rebuilds a model from its artifact (in process mode, never the API process)."""

import ast
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

import model
from service.api.routes import forecast as forecast_routes
from service.app import create_app
from service.config import Settings
from service.forecasting import forecast
from service.storage.tables import models
from tests.service.forecast_support import T0, S, add_series, publish, toy_artifact, toy_model, toy_sequence

URL = "/v1/series/room/forecast"


def iso(t_s: float) -> str:
    from service.times.timefmt import format_time

    return format_time(T0 + int(round(t_s * S)))


@pytest.fixture
def room(engine: Engine) -> np.ndarray:
    """The series "room" and a ready version "toy" trained on it; returns its observation times (s)."""
    t, v = toy_sequence(np.random.default_rng(42), 1.3)
    add_series(engine, "room", t, v)
    publish(engine, "toy", 1, toy_artifact(), ["room"])
    return t


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every model rebuilt in this process from now on (model.from_bytes calls), by artifact length."""
    calls: list[int] = []
    real = model.from_bytes

    def counted(data: bytes, device: str = "cpu") -> model.FittedModel:
        calls.append(len(data))
        return real(data, device)

    monkeypatch.setattr(model, "from_bytes", counted)
    return calls


def _inline_body(t: np.ndarray, at: list[str]) -> dict:
    return {"model": "toy", "at": at, "seed": 4,
            "observations": {"t": [iso(x) for x in t], "values": {"temp": [1.3] * len(t)}}}


def test_the_api_process_never_rebuilds_a_model_in_process_mode(settings: Settings, admin_key: str, room: np.ndarray,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The solver process rebuilds the model from the artifact bytes; here (the API process) that would raise."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the API process rebuilt or serialised a model for a forecast")

    monkeypatch.setattr(model, "from_bytes", refuse)  # the spawned solver process imports its own, untouched
    monkeypatch.setattr(model, "to_bytes", refuse)
    monkeypatch.setattr(model, "load", refuse)
    t = room
    app = create_app(settings.model_copy(update={"forecast_processes": 1}))
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        got = client.get(URL, params={"at": [iso(t[0]), iso(t[-1] + 5)], "seed": 2})
        assert got.status_code == 200, got.text
        posted = client.post("/v1/forecast", json=_inline_body(t, [iso(t[-1] + 5)]))
        assert posted.status_code == 200, posted.text
        late = client.get(URL, params={"at": iso(t[-1] + toy_model().horizon + 1)})
        assert late.status_code == 422 and "past the model's horizon" in late.json()["error"]["message"]
    assert got.json()["kind"] == ["interpolation", "extrapolation"]
    assert app.state.model_cache.keys() == []  # nothing loaded on this side


def test_in_thread_mode_the_solver_rebuilds_each_version_once_and_the_plan_never(client: TestClient, room: np.ndarray,
                                                                                 loads: list[int]) -> None:
    t = room
    horizon = toy_model().horizon
    r = client.get(URL, params={"at": iso(t[-1] + horizon + 1)})  # refused by the plan, from the row's horizon
    assert r.status_code == 422, r.text
    assert loads == []
    for seed in (1, 2):
        assert client.get(URL, params={"at": iso(t[-1] + 1), "seed": seed}).status_code == 200
    assert client.post("/v1/forecast", json=_inline_body(t, [iso(t[-1] + 5)])).status_code == 200
    assert loads == [len(toy_artifact())]


def test_the_limits_come_from_the_version_row(client: TestClient, engine: Engine, room: np.ndarray) -> None:
    """A row whose stats say a shorter horizon is held to it: the plan reads the row, not the model."""
    t = room
    with engine.begin() as conn:
        conn.execute(update(models).values(stats={"horizon_s": 2.0, "context_s": toy_model().context_seconds}))
    r = client.get(URL, params={"at": iso(t[-1] + 3)})
    assert r.status_code == 422, r.text
    assert "the model's horizon of 2 s (PT2S)" in r.json()["error"]["message"]
    assert client.get(URL, params={"at": iso(t[-1] + 2)}).status_code == 200


def test_a_row_without_limits_has_them_read_from_its_artifact_header(client: TestClient, engine: Engine,
                                                                    room: np.ndarray, loads: list[int]) -> None:
    t = room
    params = {"at": [iso(t[2]), iso(t[-1] + 4)], "seed": 8}
    with_stats = client.get(URL, params=params)
    horizon = toy_model().horizon
    late = client.get(URL, params={"at": iso(t[-1] + horizon + 1)})
    with engine.begin() as conn:
        conn.execute(update(models).values(stats=None))
    assert loads == [len(toy_artifact())]  # the solver's one load
    assert client.get(URL, params=params).json() == with_stats.json()
    again = client.get(URL, params={"at": iso(t[-1] + horizon + 1)})
    assert again.status_code == 422 and again.json() == late.json()
    assert len(loads) == 1  # the header alone was read: no model was rebuilt for the limits


def test_a_plan_reads_everything_on_one_connection(engine: Engine, room: np.ndarray) -> None:
    """Series, version, warnings and observations in one transaction: one snapshot, one checkout from the pool."""
    from decimal import Decimal

    from sqlalchemy import event

    from service.forecasting.query import TimeSpec

    t = room
    checkouts: list[object] = []

    def count(conn: object) -> None:
        checkouts.append(conn)

    at = TimeSpec(at=(T0 + int((t[-1] + 1) * S),))
    event.listen(engine, "engine_connect", count)
    try:
        plan = forecast.plan_series(engine, "room", at, name=None, version=None, context_us=None)
        body = {"t": [iso(x) for x in t], "values": {"temp": [Decimal("1.3")] * len(t)}}
        inline = forecast.plan_inline(engine, body, at, name="toy", version=None, max_values=10_000)
    finally:
        event.remove(engine, "engine_connect", count)
    assert len(checkouts) == 2  # one each
    assert plan.version.name == inline.version.name == "toy"
    assert plan.context.key == "room" and inline.context.key is None  # a stored series' own component, if any
    assert plan.last_us == inline.last_us == T0 + int(round(t[-1] * S))


def test_each_route_makes_one_forecasting_call(client: TestClient, room: np.ndarray,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The handlers hand the parsed request to `answer` once and return its answer as it is."""
    calls: list[forecast.ForecastRequest] = []
    canned: forecast.ForecastAnswer = {"model": {"name": "toy", "version": 1}, "t": [], "kind": [],
                                       "channels": {}, "warnings": ["canned"]}

    async def answer(request: forecast.ForecastRequest, **deps: object) -> forecast.ForecastAnswer:
        calls.append(request)
        return canned

    monkeypatch.setattr(forecast_routes, "answer", answer)
    t = room
    r = client.get(URL, params={"at": iso(t[-1] + 1), "context": "PT10S", "seed": 3})
    assert r.status_code == 200 and r.json() == canned
    r = client.post("/v1/forecast", json=_inline_body(t, [iso(t[-1] + 1)]))
    assert r.status_code == 200 and r.json() == canned
    stored, inline = calls
    assert stored.context == forecast.StoredContext("room", 10 * S) and stored.samples.seed == 3
    assert isinstance(inline.context, forecast.InlineContext) and inline.model == "toy"


def test_the_routes_import_nothing_of_forecasting_but_the_entry_and_the_parsers() -> None:
    """No plan, version, batcher or solver in the HTTP layer: the route parses and calls `answer`."""
    tree = ast.parse(Path(forecast_routes.__file__).read_text())
    imported = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names if (node.module or "").startswith("service.forecasting")}
    modules = {module for module, _ in imported}
    assert modules == {"service.forecasting.forecast", "service.forecasting.query"}, modules
    assert {name for module, name in imported if module == "service.forecasting.forecast"} == {
        "ForecastRequest", "InlineContext", "StoredContext", "answer"}
    assert not any(isinstance(node, ast.Import) and any(a.name.startswith("service.forecasting") for a in node.names)
                   for node in ast.walk(tree))

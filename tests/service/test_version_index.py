"""The default version of a forecast is read through `model_series` (both backends): the newest ready version trained
on the series, that the caller sees, found by the index on the series key; links come and go with their versions."""

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text, update

from service.forecasting import versions
from service.storage import keys, registry
from service.storage.registry import everyone
from service.storage.tables import model_series, models
from tests.service.forecast_support import T0, S, add_series, publish, toy_artifact, toy_sequence

URL = "/v1/series/room/forecast"


@pytest.fixture
def at(engine: Engine) -> dict[str, str]:
    """The series `room` and `acme-room` (no version yet); the query parameters of a forecast at their last time."""
    t, v = toy_sequence(np.random.default_rng(7), 1.0)
    add_series(engine, "room", t, v)
    add_series(engine, "acme-room", t, v)
    return {"at": str((T0 + int(round(t[-1] * S))) // S)}


def _links(engine: Engine, model_id: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(model_series.c.series_key).where(model_series.c.model_id == model_id)
                                 .order_by(model_series.c.series_key)))


def _picked(client: TestClient, at: dict[str, str], url: str = URL, **headers: str) -> dict[str, object] | int:
    r = client.get(url, params=at, headers=headers)
    return r.json()["model"] if r.status_code == 200 else r.status_code


def test_the_newest_ready_version_holding_the_series_answers(client: TestClient, engine: Engine,
                                                             at: dict[str, str]) -> None:
    publish(engine, "old", 1, toy_artifact(), ["room"], trained_at=T0 + 1)
    publish(engine, "mixed", 1, toy_artifact(), ["x", "room", "y"], trained_at=T0 + 2)
    assert _picked(client, at) == {"name": "mixed", "version": 1}
    # newer, but not holding the series, or not ready: not picked
    publish(engine, "elsewhere", 1, toy_artifact(), ["acme-room"], trained_at=T0 + 9)
    publish(engine, "busy", 1, toy_artifact(), ["room"], status="training")
    assert _picked(client, at) == {"name": "mixed", "version": 1}
    # a tie on the time goes to the later row; a version without trained_at counts from its created_at
    publish(engine, "tied", 1, toy_artifact(), ["room"], trained_at=T0 + 2)
    assert _picked(client, at) == {"name": "tied", "version": 1}
    with engine.begin() as conn:
        conn.execute(update(models).where(models.c.name == "old").values(trained_at=None, created_at=T0 + 5))
    assert _picked(client, at) == {"name": "old", "version": 1}
    assert _picked(client, at, "/v1/series/acme-room/forecast") == {"name": "elsewhere", "version": 1}


def test_deleting_a_version_removes_its_links_and_the_next_answers(client: TestClient, engine: Engine,
                                                                    at: dict[str, str]) -> None:
    publish(engine, "m", 1, toy_artifact(), ["room"], trained_at=T0 + 1)
    other = publish(engine, "n", 1, toy_artifact(), ["room", "acme-room"], trained_at=T0 + 2)
    assert _links(engine, other) == ["acme-room", "room"]
    assert _picked(client, at) == {"name": "n", "version": 1}
    assert client.delete("/v1/models/n/versions/1").status_code == 204
    assert _links(engine, other) == []
    assert _picked(client, at) == {"name": "m", "version": 1}
    assert client.delete("/v1/models/m").status_code == 204
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(model_series)) == 0
    r = client.get(URL, params=at)
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_model"


def test_training_writes_the_links_with_the_version(engine: Engine) -> None:
    with engine.begin() as conn:
        model_id, _ = registry.insert_version(conn, name="m", config={}, channels=["a"], series=["s", "t", "s"])
    assert _links(engine, model_id) == ["s", "t"]
    registry.delete_name(engine, "m")
    assert _links(engine, model_id) == []


def test_a_scoped_key_does_not_see_versions_outside_its_scope(client: TestClient, engine: Engine,
                                                              at: dict[str, str]) -> None:
    acme = {"Authorization": f"Bearer {keys.create_key(engine, 'acme', ['read'], prefix='acme-')}"}
    url = "/v1/series/acme-room/forecast"
    publish(engine, "acme-m", 1, toy_artifact(), ["acme-room"], trained_at=T0 + 1)
    # newer versions on acme's series that are not acme's: also trained outside the prefix, or named outside it
    publish(engine, "acme-mix", 1, toy_artifact(), ["acme-room", "room"], trained_at=T0 + 2)
    publish(engine, "shared", 1, toy_artifact(), ["acme-room"], trained_at=T0 + 3)
    assert _picked(client, at, url, **acme) == {"name": "acme-m", "version": 1}
    assert _picked(client, at, url) == {"name": "shared", "version": 1}  # the admin sees them all
    client.delete("/v1/models/acme-m")
    assert _picked(client, at, url, **acme) == 404


def test_a_scoped_caller_reads_on_past_a_page_of_versions_it_does_not_see(engine: Engine) -> None:
    def add(name: str, series: list[str]) -> None:
        with engine.begin() as conn:
            model_id, _ = registry.insert_version(conn, name=name, config={}, channels=["a"], series=series)
            registry.publish(conn, model_id, artifact=b"x", stats={}, metrics={})

    def acme(name: str, series: list[str] | tuple[str, ...]) -> bool:
        return name.startswith("acme-") and all(s.startswith("acme-") for s in series)

    add("acme-m", ["acme-s"])
    for i in range(versions._SEEN_PAGE + 3):
        add(f"other{i}", ["acme-s", "s"])
    assert versions._newest_trained_on(engine, "acme-s", acme) == "acme-m"
    assert versions._newest_trained_on(engine, "acme-s", everyone) == f"other{versions._SEEN_PAGE + 2}"
    assert versions._newest_trained_on(engine, "s", acme) is None
    assert versions._newest_trained_on(engine, "nothing", everyone) is None


def test_the_query_reads_by_the_index(engine: Engine) -> None:
    """The plan of the default version's query: a range of ix_model_series_series_key, then models by primary key,
    never a scan of `models`."""
    query = registry.ready_trained_on("room").limit(1)
    with engine.connect() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            plan = [row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
            assert any("ix_model_series_series_key" in step and "INDEX" in step for step in plan), plan
            assert any(step.startswith("SEARCH models USING INTEGER PRIMARY KEY") for step in plan), plan
            assert not any(step.startswith("SCAN") and "models" in step for step in plan), plan
        else:  # tiny tables favour a sequential scan: forbid it, to see the index can serve the query
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {sql}")))
            assert "ix_model_series_series_key" in plan, plan
            assert "Seq Scan" not in plan, plan

"""Outages of what the API depends on: a database that cannot be reached is a 503 with Retry-After, a full disk a
507, and the service recovers by itself once the database is back. Against a private PostgreSQL server that the
tests stop and start (never the shared one), and a SQLite file whose size is capped."""

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from service import keys, storage
from service.app import create_app
from service.config import Settings
from service.db import make_engine, migrate
from tests.private_servers import PrivatePostgres


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        migrate(Settings(database_url=server.url).db_url)
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_settings(private_pg: PrivatePostgres, tmp_path) -> Iterator[Settings]:  # noqa: ANN001
    if not private_pg.running:  # a test that failed half way left it stopped
        private_pg.start()
    settings = Settings(data_dir=tmp_path / "data", database_url=private_pg.url, forecast_processes=0)
    yield settings
    if not private_pg.running:
        private_pg.start()
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE series, api_keys RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def pg_client(pg_settings: Settings) -> Iterator[TestClient]:
    engine = make_engine(pg_settings.db_url)
    key = keys.create_key(engine, "admin", ["admin"])
    engine.dispose()
    with TestClient(create_app(pg_settings), headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


def _unavailable(response) -> dict:  # noqa: ANN001
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    error = response.json()["error"]
    assert error["code"] == "database_unavailable" and error["details"] == [], error
    assert "database" in error["message"]
    return error


def test_a_stopped_database_is_a_503_then_recovers(private_pg: PrivatePostgres, pg_client: TestClient) -> None:
    assert pg_client.post("/v1/series", json={"key": "s", "channels": ["v"]}).status_code == 201
    assert pg_client.get("/v1/series/s").status_code == 200
    private_pg.stop()
    _unavailable(pg_client.get("/v1/series/s"))
    _unavailable(pg_client.post("/v1/series", json={"key": "t", "channels": ["v"]}))
    _unavailable(pg_client.get("/v1/jobs"))
    private_pg.start()
    # The pool's connections died with the server: they are replaced without anyone's help.
    assert pg_client.get("/v1/series/s").status_code == 200
    assert pg_client.post("/v1/series", json={"key": "t", "channels": ["v"]}).status_code == 201


def test_a_server_shut_down_mid_request_is_a_503(private_pg: PrivatePostgres, pg_client: TestClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    engine = pg_client.app.state.engine
    running = threading.Event()

    def slow_list(*_args: object, **_kwargs: object) -> None:
        with engine.connect() as conn:
            running.set()
            conn.execute(text("SELECT pg_sleep(30)"))

    monkeypatch.setattr(storage, "list_series", slow_list)
    stopper = threading.Thread(target=lambda: (running.wait(30), time.sleep(0.3), private_pg.stop()))
    stopper.start()
    try:
        _unavailable(pg_client.get("/v1/series"))
    finally:
        stopper.join()
    private_pg.start()
    monkeypatch.undo()
    assert pg_client.get("/v1/series").status_code == 200


def test_a_full_disk_on_postgresql_is_a_507(private_pg: PrivatePostgres, pg_client: TestClient) -> None:
    # What PostgreSQL answers when it cannot grow a table's file: SQLSTATE 53100 ("could not extend file").
    with pg_client.app.state.engine.begin() as conn:
        conn.execute(text("CREATE FUNCTION lc_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                          "RAISE EXCEPTION 'could not extend file \"base/1/2\": No space left on device' "
                          "USING ERRCODE = 'disk_full'; END $$"))
        conn.execute(text("CREATE TRIGGER lc_disk_full BEFORE INSERT ON series FOR EACH ROW "
                          "EXECUTE FUNCTION lc_disk_full()"))
    try:
        r = pg_client.post("/v1/series", json={"key": "s", "channels": ["v"]})
        assert r.status_code == 507, r.text
        error = r.json()["error"]
        assert error["code"] == "insufficient_storage" and "disk" in error["message"] and error["details"] == []
    finally:
        with pg_client.app.state.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER lc_disk_full ON series"))
            conn.execute(text("DROP FUNCTION lc_disk_full()"))
    assert pg_client.post("/v1/series", json={"key": "s", "channels": ["v"]}).status_code == 201


def test_a_full_disk_on_sqlite_is_a_507_and_nothing_is_written(tmp_path, admin_key_sqlite) -> None:  # noqa: ANN001
    settings, key = admin_key_sqlite
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/v1/series", json={"key": "s", "channels": ["v"]}).status_code == 201
        engine = app.state.engine
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

        @event.listens_for(engine, "connect")
        def _cap(dbapi_conn, _record) -> None:  # noqa: ANN001 - the file may not grow: as a full disk
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

        engine.dispose()
        body = {"t": list(range(20_000)), "values": {"v": [1.5] * 20_000}}
        r = client.post("/v1/series/s/observations", json=body)
        assert r.status_code == 507, r.text
        error = r.json()["error"]
        assert error["code"] == "insufficient_storage" and "disk" in error["message"]
        event.remove(engine, "connect", _cap)
        engine.dispose()
        assert client.get("/v1/series/s").json()["counts"] == {"v": 0}
        assert client.post("/v1/series/s/observations", json=body).status_code == 200


@pytest.fixture
def admin_key_sqlite(tmp_path) -> tuple[Settings, str]:  # noqa: ANN001
    settings = Settings(data_dir=tmp_path / "data", forecast_processes=0)
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    key = keys.create_key(engine, "admin", ["admin"])
    engine.dispose()
    return settings, key

"""Outages of what the API depends on: a database that cannot be reached is a 503 with Retry-After, a full disk a
507, and the service recovers by itself once the database is back; a queue that cannot be reached delays training
but refuses nothing; /readyz says 503 while either is down. Against a private PostgreSQL server and a private Redis
that the tests stop and start (never the shared ones), and a SQLite file whose size is capped."""

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text, update

from service import storage
from service.app import create_app
from service.config import Settings
from service.storage import jobs, keys
from service.storage.db import make_engine, migrate
from service.storage.tables import jobs as jobs_table
from service.training import executor
from tests.private_servers import PrivatePostgres, PrivateRedis
from tests.training_data import TINY, add_series


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
def pg_settings(private_pg: PrivatePostgres, tmp_path) -> Iterator[Settings]:
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


def _unavailable(response) -> dict:
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


def test_a_full_disk_on_sqlite_is_a_507_and_nothing_is_written(tmp_path, admin_key_sqlite) -> None:
    settings, key = admin_key_sqlite
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/v1/series", json={"key": "s", "channels": ["v"]}).status_code == 201
        engine = app.state.engine
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()

        @event.listens_for(engine, "connect")
        def _cap(dbapi_conn, _record) -> None:
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
def admin_key_sqlite(tmp_path) -> tuple[Settings, str]:
    settings = Settings(data_dir=tmp_path / "data", forecast_processes=0)
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    key = keys.create_key(engine, "admin", ["admin"])
    engine.dispose()
    return settings, key


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_settings(private_redis: PrivateRedis, tmp_path) -> Iterator[Settings]:
    """A SQLite database and the private Redis as the queue (running at the start of the test and after it)."""
    if private_redis.proc is None:
        private_redis.start()
    settings = Settings(data_dir=tmp_path / "data", queue_url=private_redis.url, auth="disabled",
                        queue_name=f"t-{uuid.uuid4().hex[:8]}", forecast_processes=0, requeue_after_seconds=1)
    migrate(settings.db_url)
    yield settings
    if private_redis.proc is None:
        private_redis.start()
    executor.close_queue(settings)


def test_a_training_job_sent_while_the_queue_is_down_is_accepted_and_delivered_later(
        private_redis: PrivateRedis, redis_settings: Settings) -> None:
    engine = make_engine(redis_settings.db_url)
    add_series(engine, "room-1")
    private_redis.stop()
    with TestClient(create_app(redis_settings)) as client:
        started = time.monotonic()
        r = client.post("/v1/models", json={"name": "rooms", "series": ["room-1"], "config": TINY})
        assert time.monotonic() - started < 10
    # The job row is committed before the send: it is the truth, and a sweeper sends it once the queue is back.
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    assert jobs.get_job(engine, job_id).status == "queued"
    private_redis.start()
    with engine.begin() as conn:  # as if requeue_after_seconds had passed
        conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(enqueued_at=1))
    queue = executor.get_queue(redis_settings)
    assert executor.Sweeper(redis_settings, engine, queue.huey, stop=threading.Event()).sweep_once() == [job_id]
    assert executor.pending_job_ids(queue.huey) == {job_id}
    engine.dispose()


def test_readyz_is_503_while_the_queue_is_down(private_redis: PrivateRedis, redis_settings: Settings) -> None:
    with TestClient(create_app(redis_settings)) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        private_redis.stop()
        r = client.get("/readyz")
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) > 0
        assert r.json()["error"]["code"] == "queue_unavailable" and "queue" in r.json()["error"]["message"]
        private_redis.start()
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_readyz_is_503_while_the_database_is_down(private_pg: PrivatePostgres, pg_client: TestClient) -> None:
    assert pg_client.get("/readyz").json() == {"status": "ready"}
    private_pg.stop()
    r = pg_client.get("/readyz")
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["error"]["code"] == "database_unavailable"
    private_pg.start()
    assert pg_client.get("/readyz").status_code == 200

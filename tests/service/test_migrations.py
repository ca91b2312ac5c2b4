"""Upgrades of a database holding data, from the revision before each change to the newest, on SQLite and on
PostgreSQL (a database of its own per test: the shared test database is at the newest revision already)."""

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from service.errors import TooManyRequests
from service.forecasting import versions
from service.storage import jobs, keys, registry
from service.storage.db import alembic_config, make_engine
from service.storage.registry import everyone
from tests.conftest import POSTGRES_URL, _psycopg


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("postgres_url")  # skips (or fails under CI) without a server
    admin = create_engine(_psycopg(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"lc_mig_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _psycopg(POSTGRES_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _upgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
    finally:
        engine.dispose()


@pytest.fixture
def old_engine(fresh_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_url)
    yield engine
    engine.dispose()


def test_keys_made_before_key_start_still_work(fresh_url: str, old_engine: Engine) -> None:
    _upgrade(fresh_url, "0003_model_names")
    old = "lc_" + "x" * 43
    with old_engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (name, key_hash, scopes, created_at) VALUES ('old', :h, :s, 1)"),
                     {"h": keys.hash_key(old), "s": '["read"]'})
    _upgrade(fresh_url, "head")
    assert keys.scopes_for(old_engine, old) == frozenset({"read"})
    [info] = keys.list_keys(old_engine)
    assert (info.name, info.key_start) == ("old", None)
    made = keys.create_key(old_engine, "new", ["write"])
    assert [(k.name, k.key_start) for k in keys.list_keys(old_engine)] == [("new", made[:8]), ("old", None)]


def test_jobs_made_before_owners_have_none(fresh_url: str, old_engine: Engine) -> None:
    _upgrade(fresh_url, "0004_key_start")
    with old_engine.begin() as conn:
        conn.execute(text("INSERT INTO models (id, name, version, status, config, channels, series, created_at) "
                          "VALUES (1, 'm', 1, 'queued', '{}', '[]', '[]', 1)"))
        conn.execute(text("INSERT INTO jobs (id, kind, model_id, status, attempts, cancel_requested, created_at) "
                          "VALUES ('j', 'train', 1, 'queued', 0, false, 1)"))
    _upgrade(fresh_url, "head")
    with old_engine.connect() as conn:
        assert conn.execute(text("SELECT api_key_id FROM jobs")).all() == [(None,)]
    admin = keys.authenticate(old_engine, keys.create_key(old_engine, "a", ["admin"]))
    # the old job counts with the jobs asked for without a key, not against a key
    with pytest.raises(TooManyRequests):
        jobs.create_training(old_engine, job_id="k", name="n", config={}, channels=[], series=[], max_active=1)
    job, created = jobs.create_training(old_engine, job_id="k", name="n", config={}, channels=[], series=[],
                                        owner=admin.key_id, max_active=1)
    assert created and job.status == "queued"


def test_tenants_upgrade_keeps_idempotency_keys_and_scopes_them(fresh_url: str, old_engine: Engine) -> None:
    _upgrade(fresh_url, "0005_job_owner")
    with old_engine.begin() as conn:
        conn.execute(text("INSERT INTO models (id, name, version, status, config, channels, series, created_at) "
                          "VALUES (1, 'm', 1, 'queued', '{}', '[]', '[]', 1)"))
        conn.execute(text("INSERT INTO jobs (id, kind, model_id, status, attempts, cancel_requested, "
                          "idempotency_key, request_hash, created_at) "
                          "VALUES ('old', 'train', 1, 'queued', 0, false, 'k', 'h', 1)"))
        conn.execute(text("INSERT INTO api_keys (name, key_hash, scopes, created_at) VALUES ('a', 'x', '[]', 1)"))
    _upgrade(fresh_url, "head")
    with old_engine.connect() as conn:
        assert conn.execute(text("SELECT tenant FROM jobs")).all() == [("",)]
        assert conn.execute(text("SELECT prefix FROM api_keys")).all() == [(None,)]
    # the old key still answers its retry; the same key in a tenant is another one; a repeat within one tenant
    # is still refused by the database
    first, created = jobs.create_training(old_engine, job_id="new", name="m", config={}, channels=[], series=[],
                                          idempotency_key="k", request_hash="h")
    assert (first.id, created) == ("old", False)
    job, created = jobs.create_training(old_engine, job_id="t1", name="acme-m", config={}, channels=[], series=[],
                                        idempotency_key="k", request_hash="h", tenant="acme-")
    assert created and job.id == "t1"
    with pytest.raises(IntegrityError), old_engine.begin() as conn:
        conn.execute(text("INSERT INTO jobs (id, kind, status, attempts, cancel_requested, idempotency_key, tenant, "
                          "created_at) VALUES ('t2', 'train', 'queued', 0, false, 'k', 'acme-', 1)"))
    with old_engine.connect() as conn:  # the jobs table kept its indexes through the rebuild
        names = {i["name"] for i in inspect(conn).get_indexes("jobs")}
    assert {"ix_jobs_model_id", "ix_jobs_status", "ix_jobs_created_at", "ix_jobs_api_key_id_status"} <= names


def test_versions_made_before_model_series_get_their_links(fresh_url: str, old_engine: Engine) -> None:
    _upgrade(fresh_url, "0006_tenants")
    with old_engine.begin() as conn:
        conn.execute(text("INSERT INTO models (id, name, version, status, config, channels, series, created_at, "
                          "trained_at) VALUES (1, 'm', 1, 'ready', '{}', '[]', '[\"a\", \"b\", \"a\"]', 1, 10), "
                          "(2, 'n', 1, 'failed', '{}', '[]', '[]', 2, NULL), "
                          "(3, 'o', 1, 'ready', '{}', '[]', '[\"b\"]', 3, 20)"))
    _upgrade(fresh_url, "head")

    def links() -> list[tuple[int, str]]:
        with old_engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT model_id, series_key FROM model_series "
                                                        "ORDER BY model_id, series_key"))]

    assert links() == [(1, "a"), (1, "b"), (3, "b")]  # each key once; a version without series has none
    assert versions._newest_trained_on(old_engine, "b", everyone) == "o"
    assert versions._newest_trained_on(old_engine, "a", everyone) == "m"
    registry.delete_version(old_engine, "m", 1)
    assert links() == [(3, "b")]
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as conn:
            cfg = alembic_config(fresh_url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0006_tenants")
            conn.commit()
            assert "model_series" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()
    _upgrade(fresh_url, "head")
    assert links() == [(3, "b")]

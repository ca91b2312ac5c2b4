"""Shared fixtures. Every storage and API test runs against a real SQLite file and a real PostgreSQL server.

PostgreSQL: LATENTCAST_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test). Each pytest run
creates its own database beside it, migrates it once and truncates the tables between tests, so parallel runs
never meet. Without a server the PostgreSQL cases skip locally and fail under CI=true.
"""

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from service.app import create_app
from service.config import Settings
from service.storage import keys
from service.storage.db import make_engine, migrate
from service.storage.tables import metadata_obj

POSTGRES_URL = os.environ.get("LATENTCAST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = tuple(t.name for t in metadata_obj.sorted_tables)  # every table of the schema, emptied per test


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run, dropped at the end."""
    admin = create_engine(_psycopg(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 (any driver error: the server is not there)
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable under CI: {exc}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {type(exc).__name__}")
    name = f"lc_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    migrate(_psycopg(url))
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A migrated, empty database of each backend, in turn."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'latentcast.db'}"
        migrate(url)
        yield url
        return
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(_psycopg(url))
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def settings(db_url: str, tmp_path) -> Settings:
    # Forecasts solve in the API process's threads here: a solver process per app would cost each test seconds of
    # start-up. Process mode has its own tests (test_solver_pool, test_batcher, test_forecast_api, e2e).
    return Settings(data_dir=tmp_path / "data", database_url=db_url, auth="enabled", forecast_processes=0)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = make_engine(settings.db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def admin_key(engine: Engine) -> str:
    return keys.create_key(engine, "test-admin", ["admin"])


@pytest.fixture
def client(settings: Settings, admin_key: str) -> Iterator[TestClient]:
    """An in-process client whose requests carry an admin key."""
    app = create_app(settings)
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as c:
        yield c


@pytest.fixture
def anon_client(settings: Settings) -> Iterator[TestClient]:
    """An in-process client with no API key."""
    with TestClient(create_app(settings)) as c:
        yield c

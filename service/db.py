"""Engines and migrations. One place knows how each backend is tuned.

SQLite: WAL, foreign keys, a busy timeout. The convention everywhere is `engine.begin()` for a transaction that
writes and `engine.connect()` for one that only reads. On SQLite `engine.begin()` issues `BEGIN IMMEDIATE`:
pysqlite's deferred transactions let a read-then-write transaction fail at once with SQLITE_BUSY when another
writer commits in between, while taking the write lock up front makes writers queue on the busy timeout instead.
`engine.connect()` transactions stay deferred, so in WAL mode readers (auth checks, forecasts) never wait for a
writer or for each other.
PostgreSQL: psycopg 3, pool pre-ping.
"""

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text

import migrations

MIGRATION_LOCK_ID = 0x6C61_7465  # PostgreSQL advisory lock key for migrations ("late")
_IMMEDIATE = "latentcast_sqlite_immediate"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Pooled like PostgreSQL's: a connection closed on return (beyond the default 5) would be reopened, pragmas and
        # all, by the next of the API's up to 40 concurrent request threads.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10,
                               max_overflow=30)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")

        @contextlib.contextmanager
        def begin_immediate() -> Iterator[Connection]:
            with engine.connect() as conn:
                conn.execution_options(**{_IMMEDIATE: True})
                with conn.begin():
                    yield conn

        engine.begin = begin_immediate  # type: ignore[method-assign]  # the write-transaction entry point
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations among servers starting together: an advisory lock on PostgreSQL, a file lock on SQLite."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_ID})
                conn.commit()
    else:
        db_path = engine.url.database or ""
        lock_path = Path(db_path + ".migrate.lock") if db_path and db_path != ":memory:" else None
        if lock_path is None:
            yield
            return
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(url: str) -> None:
    """Bring the schema at `url` to the newest revision (`alembic upgrade head`), under the migration lock."""
    engine = make_engine(url)
    try:
        with migration_lock(engine):
            cfg = alembic_config(url)
            with engine.connect() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
    finally:
        engine.dispose()

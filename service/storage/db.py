"""Engines and migrations. One place knows how each backend is tuned.

SQLite: WAL, foreign keys, a busy timeout. The convention everywhere is `engine.begin()` for a transaction that
writes and `engine.connect()` for one that only reads. On SQLite `engine.begin()` issues `BEGIN IMMEDIATE`:
pysqlite's deferred transactions let a read-then-write transaction fail at once with SQLITE_BUSY when another
writer commits in between, while taking the write lock up front makes writers queue on the busy timeout instead.
`engine.connect()` transactions stay deferred, so in WAL mode readers (auth checks, forecasts) never wait for a
writer or for each other.
PostgreSQL: psycopg 3, pool pre-ping (a connection that died with a restarted server is replaced before use).

`storage_fault` says which database failures are outages rather than bugs, and how the API answers them.
"""

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, exc, text

import migrations
from service.errors import ApiError, InsufficientStorage, Unavailable

MIGRATION_LOCK_ID = 0x6C61_7465  # PostgreSQL advisory lock key for migrations ("late")
_IMMEDIATE = "latentcast_sqlite_immediate"


def private_file(path: Path) -> None:
    """Create `path` empty, readable and writable by its owner alone (0600), unless it exists; and its folder
    (0700) if missing. SQLite gives the -wal and -shm files it creates beside a database the database file's mode,
    so a database made here keeps its journal private too, whatever the umask."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


@contextlib.contextmanager
def reading(source: Connection | Engine) -> Iterator[Connection]:
    """A connection to read with: `source` itself when it is one (its caller's transaction, whose snapshot the
    read then shares), else a new one from the engine, closed after."""
    if isinstance(source, Connection):
        yield source
    else:
        with source.connect() as conn:
            yield conn


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            private_file(Path(path))  # an empty file is an empty database
        # One pooled connection per request thread (anyio's default limit is 40): a connection closed on return
        # would be reopened by the next request, its pragmas run and the schema parsed again on its first
        # statement, several times a request under concurrent load. An open SQLite connection costs a file handle
        # and its page cache.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40,
                               max_overflow=10)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
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


_PG_DISK_FULL = "53100"  # SQLSTATE disk_full: "could not extend file …: No space left on device"
# SQLite's primary result codes that mean the file cannot be used now, not that a statement is wrong (SQLITE_ERROR,
# "no such table", stays a bug: a 500).
_SQLITE_UNAVAILABLE = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
                       sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PROTOCOL}


def _unavailable() -> Unavailable:
    return Unavailable("the database is unavailable (unreachable, restarting or busy); retry after Retry-After "
                       "seconds", code="database_unavailable")


def storage_fault(error: BaseException) -> ApiError | None:
    """The API's answer to a database failure that is an outage, or None for anything else (a bug: a 500).

    A full disk (SQLite SQLITE_FULL "database or disk is full", PostgreSQL disk_full) is a 507; a database that
    cannot be reached, went away mid-request, is shutting down, or kept every connection busy past the timeouts is
    a 503 with Retry-After. SQLAlchemy wraps driver errors (OperationalError, InterfaceError); the bulk paths use
    the driver's own cursor, whose errors come here unwrapped.
    """
    if isinstance(error, exc.TimeoutError):  # no pooled connection became free in time
        return _unavailable()
    if isinstance(error, exc.DBAPIError):
        if not isinstance(error, exc.OperationalError | exc.InterfaceError):
            return None
        if error.orig is None:  # nothing from the driver to judge by
            return None
        error = error.orig
    if isinstance(error, sqlite3.OperationalError):
        primary = getattr(error, "sqlite_errorcode", 0) & 0xFF
        if primary == sqlite3.SQLITE_FULL:
            return _disk_full()
        return _unavailable() if primary in _SQLITE_UNAVAILABLE else None
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return _disk_full() if error.sqlstate == _PG_DISK_FULL else _unavailable()
    return None


def _disk_full() -> InsufficientStorage:
    return InsufficientStorage("the database's disk is full: the change was not saved; retry once space is freed")


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
        with os.fdopen(os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
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

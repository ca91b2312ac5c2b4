import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from service.config import Settings
from service.storage.db import make_engine, migrate
from service.storage.tables import series
from service.training import executor


@pytest.fixture
def sqlite_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _row(key: str) -> dict:
    return {"key": key, "channels": ["a"], "description": "", "meta": {}, "created_at": 0}


def test_sqlite_is_in_wal_mode_with_foreign_keys(sqlite_engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_reader_does_not_wait_for_an_open_writer(sqlite_engine) -> None:
    """engine.begin() holds the write lock; engine.connect() reads the last committed state meanwhile."""
    with sqlite_engine.begin() as conn:
        conn.execute(insert(series).values(**_row("committed")))
    with sqlite_engine.begin() as writer:
        writer.execute(insert(series).values(**_row("pending")))
        started = time.monotonic()
        with sqlite_engine.connect() as reader:
            keys = reader.execute(select(series.c.key)).scalars().all()
        assert time.monotonic() - started < 5  # the busy timeout is 30 s: a blocked reader would show it
    assert keys == ["committed"]


def test_sqlite_writers_queue_instead_of_failing(sqlite_engine) -> None:
    """Read-then-write transactions from many threads all commit (BEGIN IMMEDIATE + busy timeout)."""
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with sqlite_engine.begin() as conn:
                count = conn.execute(text("SELECT count(*) FROM series")).scalar()
                time.sleep(0.01)  # widen the window between the read and the write
                conn.execute(insert(series).values(**_row(f"s{i}-{count}")))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite_engine.connect() as conn:
        keys = sorted(conn.execute(select(series.c.key)).scalars())
    # each writer saw every earlier commit: counts 0..7, each once
    assert sorted(int(k.split("-")[1]) for k in keys) == list(range(8))


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (files 0644 unless their creator says otherwise)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_sqlite_files_are_the_owners_alone(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'latentcast.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:  # while a connection is open, the WAL and shared-memory files exist
            conn.execute(insert(series).values(**_row("a")))
            files = [data / "latentcast.db", data / "latentcast.db-wal", data / "latentcast.db-shm",
                     data / "latentcast.db.migrate.lock"]
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        engine.dispose()
    assert _mode(data) == 0o700


def test_the_embedded_queue_file_is_the_owners_alone(tmp_path: Path, open_umask: None) -> None:
    settings = Settings(data_dir=tmp_path / "data", queue_name="modes")
    queue = executor.make_queue(settings)
    try:
        queue.run_job("job-1")
        files = sorted((tmp_path / "data").glob("queue.db*"))
        assert files[0].name == "queue.db"
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        queue.huey.storage.close()

"""Version numbers per model name (both backends): counted up, never handed out twice."""

from alembic import command
from sqlalchemy import Engine, insert

from service.storage import registry
from service.storage.db import alembic_config, make_engine, migrate
from service.storage.tables import models
from service.times.timefmt import now_us


def _new(engine: Engine, name: str) -> int:
    with engine.begin() as conn:
        _, version = registry.insert_version(conn, name=name, config={}, channels=["a"], series=["s"])
    return version


def test_numbers_count_up_per_name_and_deleted_ones_are_not_reused(engine: Engine) -> None:
    assert [_new(engine, "rooms"), _new(engine, "rooms"), _new(engine, "other")] == [1, 2, 1]
    registry.delete_version(engine, "rooms", 2)  # the newest
    assert _new(engine, "rooms") == 3
    registry.delete_name(engine, "rooms")
    assert _new(engine, "rooms") == 4  # a name made again goes on from where it was
    assert [v.version for v in registry.list_versions(engine, "rooms")] == [4]


def test_rows_written_around_the_counter_do_not_collide(engine: Engine) -> None:
    """A version row inserted directly (a restore, a test fixture) moves the next number past it."""
    with engine.begin() as conn:
        conn.execute(insert(models).values(name="rooms", version=7, status="failed", config={}, channels=["a"],
                                           series=["s"], created_at=now_us()))
    assert _new(engine, "rooms") == 8
    assert _new(engine, "rooms") == 9


def test_migration_starts_each_counter_at_the_names_newest_version(tmp_path) -> None:
    """A database made before model_names existed: upgrading seeds the counters from the versions it holds."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    with engine.connect() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002_channel_counts")
        conn.commit()
    with engine.begin() as conn:
        for version in (1, 5):
            conn.execute(insert(models).values(name="rooms", version=version, status="failed", config={},
                                               channels=["a"], series=["s"], created_at=now_us()))
    migrate(url)
    registry.delete_version(engine, "rooms", 5)
    assert _new(engine, "rooms") == 6
    engine.dispose()

"""Storage functions against both backends (the `engine` fixture is parametrised over SQLite and PostgreSQL)."""

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from service import storage
from service.errors import Conflict, NotFound
from service.storage import bulk
from service.storage.tables import observations


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(observations)).scalar_one()


@pytest.fixture
def rec(engine: Engine) -> storage.SeriesRecord:
    return storage.create_series(engine, "room-1", ["temp", "hum"], "a room", {"floor": 2})


def test_create_get_and_conflict(engine: Engine, rec: storage.SeriesRecord) -> None:
    got = storage.get_series(engine, "room-1")
    assert got == rec
    assert got.channels == ("temp", "hum") and got.metadata == {"floor": 2}
    with pytest.raises(Conflict):
        storage.create_series(engine, "room-1", ["x"], "", {})
    with pytest.raises(NotFound, match="nope"):
        storage.get_series(engine, "nope")


def test_upsert_counts_and_matrix(engine: Engine, rec: storage.SeriesRecord) -> None:
    ch = np.array([0, 0, 1, 0])
    t = np.array([30, 10, 10, -5], dtype=np.int64)
    v = np.array([3.0, 1.0, 0.5, -1.0])
    assert storage.upsert_observations(engine, rec.id, rec.channels, ch, t, v) == storage.WriteCounts(4, 4, 0, 0)
    # Re-send: nothing changes. One value differs: updated. One new time: inserted.
    assert storage.upsert_observations(engine, rec.id, rec.channels, ch, t, v) == storage.WriteCounts(4, 0, 0, 4)
    v2 = v.copy()
    v2[0] = 3.5
    assert (storage.upsert_observations(engine, rec.id, rec.channels, np.r_[ch, 1], np.r_[t, 40], np.r_[v2, 7.0])
            == storage.WriteCounts(5, 1, 1, 3))
    times, values = storage.read_matrix(engine, rec.id, ["temp", "hum"], None, None)
    assert times.tolist() == [-5, 10, 30, 40]
    np.testing.assert_array_equal(values, [[-1.0, np.nan], [1.0, 0.5], [3.5, np.nan], [np.nan, 7.0]])
    times, values = storage.read_matrix(engine, rec.id, ["hum"], 10, 40)  # start inclusive, end exclusive
    assert times.tolist() == [10] and values.tolist() == [[0.5]]
    assert storage.series_time_range(engine, rec.id, ["hum"]) == (10, 40)
    assert storage.series_time_range(engine, rec.id, ["temp", "hum"]) == (-5, 40)
    stats = storage.channel_stats(engine, [rec.id])[rec.id]
    assert stats["temp"] == storage.ChannelStats(3, -5, 30) and stats["hum"] == storage.ChannelStats(2, 10, 40)


def test_sparse_batch_inside_dense_range_counts_exactly(engine: Engine, rec: storage.SeriesRecord) -> None:
    dense = np.arange(0, 1000, dtype=np.int64)
    storage.upsert_observations(engine, rec.id, rec.channels, np.zeros(1000, int), dense, dense.astype(float))
    # A sparse batch over the dense range: one unchanged, one updated, one new.
    got = storage.upsert_observations(engine, rec.id, rec.channels, np.zeros(3, int), np.array([0, 999, 2000]),
                                      np.array([0.0, 5.0, 1.0]))
    assert got == storage.WriteCounts(3, 1, 1, 1)
    assert _count(engine) == 1001


def test_read_page_is_exact(engine: Engine, rec: storage.SeriesRecord) -> None:
    # temp at even times, hum at multiples of 3: the union of times is irregular.
    t_temp = np.arange(0, 60, 2, dtype=np.int64)
    t_hum = np.arange(0, 60, 3, dtype=np.int64)
    storage.upsert_observations(engine, rec.id, rec.channels, np.r_[np.zeros(len(t_temp), int),
                                np.ones(len(t_hum), int)], np.r_[t_temp, t_hum], np.r_[t_temp, -t_hum] * 1.0)
    all_t, all_v = storage.read_matrix(engine, rec.id, rec.channels, None, None)
    pages, start = [], None
    while True:
        times, values, more = storage.read_page(engine, rec.id, rec.channels, start, None, 7)
        pages.append((times, values))
        if not more:
            break
        start = int(times[-1]) + 1
    assert all(len(p[0]) == 7 for p in pages[:-1])
    np.testing.assert_array_equal(np.concatenate([p[0] for p in pages]), all_t)
    np.testing.assert_array_equal(np.concatenate([p[1] for p in pages]), all_v)


def test_delete_range_and_series(engine: Engine, rec: storage.SeriesRecord) -> None:
    t = np.arange(10, dtype=np.int64)
    storage.upsert_observations(engine, rec.id, rec.channels, np.r_[np.zeros(10, int), np.ones(10, int)],
                                np.r_[t, t], np.r_[t, t] * 1.0)
    assert storage.delete_observations(engine, rec.id, ["temp"], 2, 5) == 3
    assert _count(engine) == 17
    storage.delete_series(engine, "room-1")
    assert _count(engine) == 0
    with pytest.raises(NotFound):
        storage.upsert_observations(engine, rec.id, rec.channels, np.zeros(1, int), t[:1], t[:1] * 1.0)


def test_keys_with_prefix_match_exactly(engine: Engine) -> None:
    """No LIKE wildcards ('_' would match '-', '%' anything) and no case folding (SQLite's LIKE has it)."""
    for key in ("site-a.2", "site-a.1", "site_a.1", "Site-a.3", "site-b.1", "sitea"):
        storage.create_series(engine, key, ["x"], "", {})
    assert storage.keys_with_prefix(engine, "site-a", limit=10) == ["site-a.1", "site-a.2"]
    assert storage.keys_with_prefix(engine, "site_", limit=10) == ["site_a.1"]
    assert storage.keys_with_prefix(engine, "site%", limit=10) == []
    assert storage.keys_with_prefix(engine, "site", limit=2) == ["site-a.1", "site-a.2"]  # key order, cut at limit
    assert storage.keys_with_prefix(engine, "site-a.1", limit=10) == ["site-a.1"]  # a whole key is its own prefix


def test_get_many_keeps_the_order_asked(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.storage import series

    monkeypatch.setattr(series, "_KEYS_PER_QUERY", 2)  # several queries
    for key in ("c", "a", "b"):
        storage.create_series(engine, key, ["x"], "", {})
    assert [r.key for r in storage.get_many(engine, ["b", "c", "a"])] == ["b", "c", "a"]
    with pytest.raises(NotFound, match=r"'nope' \(nor 1 more"):
        storage.get_many(engine, ["a", "nope", "b", "ghost"])


def test_list_update(engine: Engine) -> None:
    for key in ["b_1", "a.x", "a_1", "aX", "c"]:
        storage.create_series(engine, key, ["v"], "", {})
    assert [r.key for r in storage.list_series(engine, prefix="a_", after=None, limit=10)] == ["a_1"]
    # Byte order on both backends: '.' < 'X' < '_' < 'a'.
    assert [r.key for r in storage.list_series(engine, prefix=None, after=None, limit=10)] == [
        "a.x", "aX", "a_1", "b_1", "c"]
    assert [r.key for r in storage.list_series(engine, prefix=None, after="aX", limit=2)] == ["a_1", "b_1"]
    got = storage.update_series(engine, "c", description="d", metadata={"k": [1]}, channels=["w", "v"])
    assert got.channels == ("v", "w") and got.description == "d" and got.metadata == {"k": [1]}
    with pytest.raises(ValueError, match="cannot be removed: v"):
        storage.update_series(engine, "c", channels=["w"])


def test_kept_counts_follow_writes_and_deletes(engine: Engine, rec: storage.SeriesRecord) -> None:
    from service.storage.tables import channel_counts

    def kept() -> dict[str, int]:
        with engine.connect() as conn:
            return {r.channel: r.n for r in conn.execute(select(channel_counts))}

    t = np.arange(10, dtype=np.int64)
    storage.upsert_observations(engine, rec.id, rec.channels, np.r_[np.zeros(10, int), np.ones(5, int)],
                                np.r_[t, t[:5]], np.r_[t, t[:5]] * 1.0)
    storage.upsert_observations(engine, rec.id, rec.channels, np.zeros(3, int), t[:3], t[:3] + 0.5)  # updates only
    assert kept() == {"temp": 10, "hum": 5}
    storage.delete_observations(engine, rec.id, ["hum"], None, None)
    storage.delete_observations(engine, rec.id, ["temp"], 0, 4)
    assert kept() == {"temp": 6}
    assert storage.channel_stats(engine, [rec.id])[rec.id] == {"temp": storage.ChannelStats(6, 4, 9)}
    storage.delete_series(engine, "room-1")
    assert kept() == {}


def test_counts_migration_backfills(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import text

    from service.storage.db import alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0001")
    eng = make_engine(url)
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO series (id, key, channels, description, metadata, created_at) "
                          "VALUES (1, 's', '[\"a\",\"b\"]', '', '{}', 0)"))
        conn.execute(text("INSERT INTO observations VALUES (1, 'a', 1, 1.0), (1, 'a', 2, 1.0), (1, 'b', 1, 1.0)"))
    command.upgrade(alembic_config(url), "head")
    with eng.connect() as conn:
        assert sorted(conn.execute(text("SELECT channel, n FROM channel_counts")).all()) == [("a", 2), ("b", 1)]
    eng.dispose()


def test_concurrent_writers_of_one_series_count_each_value_once(engine: Engine, rec: storage.SeriesRecord) -> None:
    """Four writers send the same batch at once: exactly one inserts each value, the others find it unchanged."""
    from concurrent.futures import ThreadPoolExecutor

    t = np.arange(2000, dtype=np.int64)
    ch = np.zeros(2000, int)

    def write(_: int) -> storage.WriteCounts:
        return storage.upsert_observations(engine, rec.id, rec.channels, ch, t, t * 0.5)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(write, range(4)))
    assert sum(r.inserted for r in results) == 2000
    assert all(r.inserted + r.unchanged == 2000 and r.updated == 0 for r in results)
    assert _count(engine) == 2000
    assert storage.channel_stats(engine, [rec.id])[rec.id]["temp"].count == 2000


def test_a_batch_failing_at_its_last_channel_leaves_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = storage.create_series(engine, "three", ["a", "b", "c"], "", {})
    storage.upsert_observations(engine, rec.id, rec.channels, np.array([0]), np.array([5], dtype=np.int64),
                                np.array([1.0]))  # one stored value, which the batch would change
    real_insert = bulk._insert

    def insert(conn, series_id, channel, t, v) -> None:
        if channel == "c":  # the last channel written: the batch fails after a and b were written
            raise RuntimeError("the connection broke")
        real_insert(conn, series_id, channel, t, v)

    monkeypatch.setattr(bulk, "_insert", insert)
    ch = np.array([0, 0, 1, 2])
    t = np.array([5, 6, 6, 6], dtype=np.int64)
    with pytest.raises(RuntimeError, match="broke"):
        storage.upsert_observations(engine, rec.id, rec.channels, ch, t, np.array([2.0, 2.0, 3.0, 4.0]))
    times, values = storage.read_matrix(engine, rec.id, rec.channels)
    assert times.tolist() == [5] and values.tolist()[0][0] == 1.0 and np.isnan(values[0, 1:]).all()
    assert {c: s.count for c, s in storage.channel_stats(engine, [rec.id])[rec.id].items()} == {"a": 1}


@pytest.mark.parametrize("n", [1, 3, 255, 256, 257, 1000, 2 * bulk._ROWS_PER_INSERT + 7])
def test_new_rows_of_any_count_are_written_exactly(engine: Engine, rec: storage.SeriesRecord, n: int) -> None:
    # SQLite writes them in statements of _ROWS_PER_INSERT rows and powers of two: every row once, every bit kept.
    rng = np.random.default_rng(n)
    t = np.sort(rng.choice(10**15, n, replace=False)).astype(np.int64) - 10**14
    v = rng.normal(0, 1e3, n) * 10.0 ** rng.integers(-300, 95, n)
    v[0] = 5e-324  # the smallest subnormal (SQLite stores -0.0 as 0, whichever statement writes it)
    ch = rng.integers(0, 2, n)
    assert storage.upsert_observations(engine, rec.id, rec.channels, ch, t, v) == storage.WriteCounts(n, n, 0, 0)
    times, values = storage.read_matrix(engine, rec.id, rec.channels)
    assert times.tolist() == t.tolist()
    got = values[np.arange(n), ch]
    assert got.view(np.int64).tolist() == v.view(np.int64).tolist()
    assert storage.upsert_observations(engine, rec.id, rec.channels, ch, t, v) == storage.WriteCounts(n, 0, 0, n)

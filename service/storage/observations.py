"""Reading and deleting observations. Times are integer µs since the epoch, UTC; values float64.

Every query here walks the primary key (series_id, channel, t): one index range per channel.
"""

from collections.abc import Sequence

import numpy as np
from sqlalchemy import Connection, Delete, Engine, bindparam, delete, select, text

from service.errors import NotFound
from service.storage.db import reading
from service.storage.tables import observations, series

o = observations.c


_ROW = np.dtype([("c", np.int64), ("t", np.int64), ("v", np.float64)])


def _fetch(conn: Connection, sql: str, params: list[object]) -> np.ndarray:
    """Run `sql` (placeholders `?`) on the driver's own cursor; rows (channel index, t, value) → structured array.

    Reads return up to millions of rows: the driver's tuples go straight into numpy (SQLAlchemy row objects would
    cost several times the fetch).
    """
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    raw = conn.connection.driver_connection
    assert raw is not None  # a Connection in use holds its driver connection
    cur = raw.cursor()
    try:
        cur.execute(sql, params)
        rows = cur.fetchall()
    finally:
        cur.close()
    return np.array(rows, dtype=_ROW) if rows else np.empty(0, _ROW)


def _assemble(channels: Sequence[str], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (c: channel index, t µs, v) → sorted unique times (T,) int64 and values (T, C) float64, NaN = none."""
    times, pos = np.unique(rows["t"], return_inverse=True)
    values = np.full((len(times), len(channels)), np.nan)
    values[pos, rows["c"]] = rows["v"]
    return times, values


def _bounds(start_us: int | None, end_us: int | None) -> tuple[str, list[object]]:
    sql = ""
    params: list[object] = []
    if start_us is not None:
        sql, params = sql + " AND t >= ?", [*params, start_us]
    if end_us is not None:
        sql, params = sql + " AND t < ?", [*params, end_us]
    return sql, params


def _range(query: Delete, start_us: int | None, end_us: int | None) -> Delete:
    if start_us is not None:
        query = query.where(o.t >= start_us)
    if end_us is not None:
        query = query.where(o.t < end_us)
    return query


def read_matrix(source: Connection | Engine, series_id: int, channels: Sequence[str], start_us: int | None = None,
                end_us: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All observations of `channels` with start_us <= t < end_us (either bound None: open), as a matrix.

    Returns (times, values): times (T,) int64 µs, sorted, every t where any of the channels has a value; values
    (T, C) float64 in the order of `channels`, NaN where that channel was not observed at that time.
    """
    if not channels:
        return _assemble(channels, np.empty(0, _ROW))
    names = list(channels)
    marks = ", ".join("?" * len(names))
    cases = " ".join(f"WHEN ? THEN {i}" for i in range(len(names)))
    bounds, bound_params = _bounds(start_us, end_us)
    sql = (f"SELECT CASE channel {cases} END, t, value FROM observations "
           f"WHERE series_id = ? AND channel IN ({marks}){bounds}")
    with reading(source) as conn:
        rows = _fetch(conn, sql, [*names, series_id, *names, *bound_params])
    return _assemble(channels, rows)


def read_page(engine: Engine, series_id: int, channels: Sequence[str], start_us: int | None, end_us: int | None,
              limit: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The first `limit` time rows of `read_matrix(...)`, and whether more rows follow.

    Each channel contributes at most its first limit + 1 rows: any time among the first limit + 1 distinct times
    is among its own channel's first limit + 1, so the page is exact while reading at most C·(limit + 1) rows,
    in one statement (one snapshot).
    """
    if not channels:
        return *_assemble(channels, np.empty(0, _ROW)), False
    bounds, bound_params = _bounds(start_us, end_us)
    parts, params = [], []
    for i, name in enumerate(channels):
        parts.append(f"SELECT * FROM (SELECT {i} AS c, t, value FROM observations WHERE series_id = ? "
                     f"AND channel = ?{bounds} ORDER BY t LIMIT ?) AS p{i}")
        params += [series_id, name, *bound_params, limit + 1]
    with engine.connect() as conn:
        rows = _fetch(conn, " UNION ALL ".join(parts), params)
    times, values = _assemble(channels, rows)
    more = len(times) > limit
    return times[:limit], values[:limit], more


def delete_observations(engine: Engine, series_id: int, channels: Sequence[str], start_us: int | None,
                        end_us: int | None) -> int:
    """Delete the observations of `channels` with start_us <= t < end_us; returns how many were deleted."""
    deleted: dict[str, int] = {}
    with engine.begin() as conn:
        lock_series(conn, series_id)
        for name in dict.fromkeys(channels):
            query = _range(delete(observations).where(o.series_id == series_id, o.channel == name), start_us, end_us)
            deleted[name] = -conn.execute(query).rowcount
        add_counts(conn, series_id, deleted)
    return -sum(deleted.values())


def add_counts(conn: Connection, series_id: int, deltas: dict[str, int]) -> None:
    """Change the kept per-channel observation counts (table channel_counts) by `deltas`, inside the writer's
    transaction (which holds `lock_series`)."""
    rows = [{"s": series_id, "c": name, "n": n} for name, n in deltas.items() if n]
    if not rows:
        return
    conn.execute(text("INSERT INTO channel_counts (series_id, channel, n) VALUES (:s, :c, :n) "
                      "ON CONFLICT (series_id, channel) DO UPDATE SET n = channel_counts.n + excluded.n"), rows)
    conn.execute(text("DELETE FROM channel_counts WHERE series_id = :s AND n <= 0"), {"s": series_id})


_ID = select(series.c.id).where(series.c.id == bindparam("id"))  # built once: every write runs it
_ID_LOCKED = _ID.with_for_update()


def lock_series(conn: Connection, series_id: int) -> None:
    """Serialise writers of one series for the rest of the transaction; raises NotFound if it was deleted.

    PostgreSQL: a row lock on the series. SQLite: every transaction is BEGIN IMMEDIATE, so it holds the write lock
    already.
    """
    query = _ID_LOCKED if conn.dialect.name == "postgresql" else _ID
    if conn.execute(query, {"id": series_id}).first() is None:
        raise NotFound(f"series {series_id} was deleted")

"""Series rows: create, read, list, change, delete, and the per-channel counts and time ranges.

Functions take an `Engine` (they open their own transaction) or, where noted, a `Connection` already inside one.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.errors import Conflict, NotFound
from service.storage.db import reading
from service.storage.tables import channel_counts, observations, series
from service.times.timefmt import now_us


@dataclass(frozen=True)
class SeriesRecord:
    id: int
    key: str
    channels: tuple[str, ...]
    description: str
    metadata: dict[str, Any]
    created_at: int  # µs since the epoch, UTC


@dataclass(frozen=True)
class ChannelStats:
    count: int
    first_t: int  # µs
    last_t: int  # µs


def _record(row: Row[*tuple[Any, ...]]) -> SeriesRecord:
    return SeriesRecord(id=row.id, key=row.key, channels=tuple(row.channels), description=row.description,
                        metadata=dict(row.meta), created_at=row.created_at)


def missing(key: str) -> NotFound:
    """The answer for a series that does not exist, or that the caller may not see: the same, so that a tenant
    cannot learn of another's series."""
    return NotFound(f"no series with key {key!r}")


# Built once: most requests read their series by key, and building a statement costs about as much as running it.
_BY_KEY = select(series).where(series.c.key == bindparam("key"))
_BY_KEY_LOCKED = _BY_KEY.with_for_update()


def _get(conn: Connection, key: str, *, for_update: bool = False) -> SeriesRecord:
    query = _BY_KEY_LOCKED if for_update and conn.dialect.name == "postgresql" else _BY_KEY
    row = conn.execute(query, {"key": key}).first()
    if row is None:
        raise missing(key)
    return _record(row)


def get_series(source: Connection | Engine, key: str) -> SeriesRecord:
    """The series named `key`; raises `NotFound` (404, code not_found) when there is none."""
    with reading(source) as conn:
        return _get(conn, key)


def create_series(engine: Engine, key: str, channels: Sequence[str], description: str,
                  metadata: Mapping[str, Any]) -> SeriesRecord:
    """Insert a new series; raises `Conflict` (409) when the key is taken."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(series).values(key=key, channels=list(channels), description=description,
                                               meta=dict(metadata), created_at=now_us()))
            return _get(conn, key)
    except IntegrityError:
        raise Conflict(f"a series with key {key!r} exists already", code="series_exists") from None


# Bound on the bound parameters of one IN (...) (SQLite allows 32,766 in one statement).
_KEYS_PER_QUERY = 1000


def get_many(engine: Engine, keys: Sequence[str], visible: Callable[[str], bool] = lambda _key: True
             ) -> list[SeriesRecord]:
    """The series named `keys`, in that order, read in a few queries; `NotFound` naming the first missing key.
    A key for which `visible` is false counts as missing (a tenant's key asking for another's series)."""
    found: dict[str, SeriesRecord] = {}
    with engine.connect() as conn:
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            chunk = [k for k in keys[start:start + _KEYS_PER_QUERY] if visible(k)]
            found.update((r.key, _record(r)) for r in conn.execute(select(series).where(series.c.key.in_(chunk))))
    missing = [k for k in keys if k not in found]
    if missing:
        raise NotFound(f"no series with key {missing[0]!r}"
                       + (f" (nor {len(missing) - 1} more of the keys given)" if len(missing) > 1 else ""))
    return [found[k] for k in keys]


def _key_starts_with(prefix: str) -> ColumnElement[bool]:
    # substr, not LIKE: '_' and '%' are LIKE wildcards and SQLite's LIKE ignores case. Not a range comparison either:
    # under a linguistic collation (PostgreSQL's en_US) the keys starting with a prefix need not sort together.
    return func.substr(series.c.key, 1, len(prefix)) == prefix


def list_series(engine: Engine, *, prefix: str | None, after: str | None, limit: int) -> list[SeriesRecord]:
    """Up to `limit` series ordered by key, keys starting with `prefix`, strictly after the key `after`."""
    query = select(series).order_by(series.c.key).limit(limit)
    if prefix:
        query = query.where(_key_starts_with(prefix))
    if after is not None:
        query = query.where(series.c.key > after)
    with engine.connect() as conn:
        return [_record(r) for r in conn.execute(query)]


def keys_with_prefix(engine: Engine, prefix: str, *, limit: int) -> list[str]:
    """Up to `limit` keys that start with `prefix` (case-sensitive, no wildcards), in key order."""
    query = select(series.c.key).where(_key_starts_with(prefix)).order_by(series.c.key).limit(limit)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def update_series(engine: Engine, key: str, *, description: str | None = None,
                  metadata: Mapping[str, Any] | None = None, channels: Sequence[str] | None = None) -> SeriesRecord:
    """Change description and metadata (replaced whole) and add channels.

    `channels` is the full new list: every existing channel must be in it (channels are never removed); the new
    ones are appended in the order given. Raises `NotFound`, or `ValueError` naming the channels left out.
    """
    with engine.begin() as conn:
        current = _get(conn, key, for_update=True)
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description
        if metadata is not None:
            values["meta"] = dict(metadata)
        if channels is not None:
            missing = [c for c in current.channels if c not in channels]
            if missing:
                raise ValueError(f"channels cannot be removed: {', '.join(missing)} missing from the new list")
            values["channels"] = list(current.channels) + [c for c in channels if c not in current.channels]
        if values:
            conn.execute(update(series).where(series.c.id == current.id).values(**values))
        return _get(conn, key)


def delete_series(engine: Engine, key: str) -> None:
    """Delete a series and (by the foreign key's cascade, and explicitly for safety) its observations."""
    with engine.begin() as conn:
        current = _get(conn, key, for_update=True)
        conn.execute(delete(observations).where(observations.c.series_id == current.id))
        conn.execute(delete(series).where(series.c.id == current.id))


def channel_stats(engine: Engine, series_ids: Iterable[int]) -> dict[int, dict[str, ChannelStats]]:
    """Per series id, per channel with observations: count, first and last time (µs).

    Counts are read from channel_counts (kept by the write path); first and last are one primary-key probe each.
    """
    ids = list(series_ids)
    out: dict[int, dict[str, ChannelStats]] = {i: {} for i in ids}
    if not ids:
        return out
    o, c = observations.c, channel_counts.c
    same = (o.series_id == c.series_id) & (o.channel == c.channel)
    query = select(c.series_id, c.channel, c.n, select(func.min(o.t)).where(same).scalar_subquery(),
                   select(func.max(o.t)).where(same).scalar_subquery()).where(c.series_id.in_(ids))
    with engine.connect() as conn:
        for sid, channel, count, first, last in conn.execute(query):
            if count and first is not None:
                out[sid][channel] = ChannelStats(int(count), int(first), int(last))
    return out


def series_time_range(source: Connection | Engine, series_id: int, channels: Sequence[str]) -> tuple[int, int] | None:
    """(first, last) observation time in µs over `channels`, or None when none has a value."""
    o = observations.c
    # One min/max per channel: each is two probes of the primary key (series_id, channel, t).
    firsts, lasts = [], []
    with reading(source) as conn:
        for channel in channels:
            first, last = conn.execute(select(func.min(o.t), func.max(o.t))
                                       .where(o.series_id == series_id, o.channel == channel)).one()
            if first is not None:
                firsts.append(int(first))
                lasts.append(int(last))
    return (min(firsts), max(lasts)) if firsts else None

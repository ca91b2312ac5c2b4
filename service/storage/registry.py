"""The model registry: versions of named models in the `models` table.

A version is born `queued` with its job, becomes `training` when a worker claims the job, and ends `ready`,
`failed` or `cancelled`. Only a `ready` version has an artifact: the artifact and the `ready` status are written
by one UPDATE (`publish`), so no reader ever sees a half model. Version numbers count up per name from 1.
"""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, Select, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service.errors import Conflict, NotFound
from service.storage.tables import model_names, model_series, models
from service.times.timefmt import now_us


class VersionStatus(StrEnum):
    """A version's life: queued → training → ready | failed | cancelled (it is back to queued when its job is
    re-queued). Stored as the value in `models.status`; the API answers it as is."""

    QUEUED = "queued"
    TRAINING = "training"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Whether the caller may see a version, from its name and training series (keys.Principal.sees_model): a version
# it may not see answers exactly as one that does not exist.
Sees = Callable[[str, Sequence[str]], bool]


def everyone(_name: str, _series: Sequence[str]) -> bool:
    return True


def _name_starts_with(prefix: str) -> ColumnElement[bool]:
    # substr, not LIKE: '_' and '%' are LIKE wildcards and SQLite's LIKE ignores case
    return func.substr(models.c.name, 1, len(prefix)) == prefix


@dataclass(frozen=True)
class Version:
    """One row of `models` without its artifact. Times are µs since the epoch."""

    id: int
    name: str
    version: int
    status: str
    config: dict[str, Any]
    channels: list[str]
    series: list[str]
    stats: dict[str, Any] | None
    metrics: dict[str, Any] | None
    error: str | None
    artifact_sha256: str | None
    created_at: int
    trained_at: int | None


_COLUMNS = [c for c in models.c if c.name != "artifact"]


def _version(row: Row[tuple[object, ...]]) -> Version:
    m = row._mapping
    return Version(id=m["id"], name=m["name"], version=m["version"], status=m["status"], config=m["config"],
                   channels=m["channels"], series=m["series"], stats=m["stats"], metrics=m["metrics"],
                   error=m["error"], artifact_sha256=m["artifact_sha256"], created_at=m["created_at"],
                   trained_at=m["trained_at"])


def insert_version(conn: Connection, *, name: str, config: dict[str, Any], channels: list[str],
                   series: list[str]) -> tuple[int, int]:
    """Add the next version of `name` as `queued` inside the caller's transaction; return (row id, version).

    Numbers come from `model_names`, bumped by one atomic upsert (its row lock on PostgreSQL, the write lock on
    SQLite, serialise writers), so a number is never handed out twice, even after its version was deleted.
    """
    version = conn.execute(_bump(conn, name).returning(model_names.c.last_version)).scalar_one()
    # rows written around the counter (an older schema's, a restore) must not collide with it
    newest = conn.execute(select(func.max(models.c.version)).where(models.c.name == name)).scalar()
    if newest is not None and newest >= version:
        version = newest + 1
        conn.execute(update(model_names).where(model_names.c.name == name).values(last_version=version))
    row_id = conn.execute(models.insert().values(
        name=name, version=version, status=VersionStatus.QUEUED, config=config, channels=channels, series=series,
        created_at=now_us()).returning(models.c.id)).scalar_one()
    link_series(conn, row_id, series)
    return row_id, version


def link_series(conn: Connection, model_id: int, series: Sequence[str]) -> None:
    """Write the `model_series` rows of version `model_id`, trained on `series`, inside the caller's transaction:
    whatever writes a version's `models.series` writes these with it (insert_version; a test or restore that inserts
    `models` rows itself calls this). They go with the version (ON DELETE CASCADE)."""
    keys = list(dict.fromkeys(series))
    if keys:
        conn.execute(model_series.insert(), [{"model_id": model_id, "series_key": key} for key in keys])


def ready_trained_on(series_key: str, *, before: tuple[int, int] | None = None) -> Select[Any]:
    """The ready versions trained on `series_key` (id, name, series, newest), the most recently trained first
    (`newest`: trained_at, else created_at; ties by id), only those ordered after `before` (a row's (newest, id))
    when given: one range of the index on `model_series.series_key`, then each candidate's row by its primary key,
    never a read of the other versions. Add a LIMIT to read a page."""
    newest = func.coalesce(models.c.trained_at, models.c.created_at)
    query = (select(models.c.id, models.c.name, models.c.series, newest.label("newest"))
             .select_from(model_series.join(models, models.c.id == model_series.c.model_id))
             .where(model_series.c.series_key == series_key, models.c.status == VersionStatus.READY)
             .order_by(newest.desc(), models.c.id.desc()))
    if before is not None:
        query = query.where(or_(newest < before[0], and_(newest == before[0], models.c.id < before[1])))
    return query


def _bump(conn: Connection, name: str) -> postgresql.Insert | sqlite.Insert:
    """The upsert that adds `name`'s counter at 1 or adds one to it, in the connection's dialect."""
    key, bumped = [model_names.c.name], {"last_version": model_names.c.last_version + 1}
    if conn.dialect.name == "postgresql":
        return postgresql.insert(model_names).values(name=name, last_version=1).on_conflict_do_update(
            index_elements=key, set_=bumped)
    return sqlite.insert(model_names).values(name=name, last_version=1).on_conflict_do_update(
        index_elements=key, set_=bumped)


def get_by_id(engine: Engine, model_id: int | None) -> Version:
    with engine.connect() as conn:
        row = conn.execute(select(*_COLUMNS).where(models.c.id == model_id)).first()
    if row is None:
        raise NotFound(f"model version id {model_id} does not exist", code="no_model")
    return _version(row)


def get_version(engine: Engine, name: str, version: int, sees: Sees = everyone) -> Version:
    with engine.connect() as conn:
        row = conn.execute(select(*_COLUMNS).where(models.c.name == name, models.c.version == version)).first()
    if row is None or not sees(row.name, row.series):
        raise NotFound(f"model {name!r} has no version {version}", code="no_model")
    return _version(row)


def list_versions(engine: Engine, name: str, sees: Sees = everyone) -> list[Version]:
    """Every version of `name` the caller sees, newest first; NotFound when there is none."""
    with engine.connect() as conn:
        rows = conn.execute(select(*_COLUMNS).where(models.c.name == name).order_by(models.c.version.desc())).all()
    rows = [r for r in rows if sees(r.name, r.series)]
    if not rows:
        raise NotFound(f"no model named {name!r}", code="no_model")
    return [_version(r) for r in rows]


def list_newest(engine: Engine, *, limit: int, after: str | None = None, name_prefix: str | None = None,
                sees: Sees = everyone) -> list[Version]:
    """The newest version of each name, names in ascending order, starting after the name `after`.

    With `name_prefix` (a tenant's), only names starting with it, and of each the newest version the caller
    sees: their names, versions and series are read first, then the chosen rows.
    """
    if name_prefix is not None:
        return _list_newest_seen(engine, limit=limit, after=after, name_prefix=name_prefix, sees=sees)
    newest = (select(models.c.name, func.max(models.c.version).label("v"))
              .group_by(models.c.name).subquery())
    query = (select(*_COLUMNS).join(newest, (models.c.name == newest.c.name) & (models.c.version == newest.c.v))
             .order_by(models.c.name).limit(limit))
    if after is not None:
        query = query.where(models.c.name > after)
    with engine.connect() as conn:
        return [_version(r) for r in conn.execute(query).all()]


def _list_newest_seen(engine: Engine, *, limit: int, after: str | None, name_prefix: str,
                      sees: Sees) -> list[Version]:
    query = (select(models.c.id, models.c.name, models.c.series).where(_name_starts_with(name_prefix))
             .order_by(models.c.name, models.c.version.desc()))
    if after is not None:
        query = query.where(models.c.name > after)
    chosen: dict[str, int] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            if row.name not in chosen and sees(row.name, row.series):
                if len(chosen) == limit:
                    break
                chosen[row.name] = row.id
        rows = conn.execute(select(*_COLUMNS).where(models.c.id.in_(list(chosen.values())))
                            .order_by(models.c.name)).all() if chosen else []
    return [_version(r) for r in rows]


def read_artifact(engine: Engine, name: str, version: int, sees: Sees = everyone) -> bytes:
    """The saved model of a `ready` version (safetensors bytes); Conflict while it is not ready."""
    with engine.connect() as conn:
        row = conn.execute(select(models.c.status, models.c.artifact, models.c.name, models.c.series)
                           .where(models.c.name == name, models.c.version == version)).first()
    if row is None or not sees(row.name, row.series):
        raise NotFound(f"model {name!r} has no version {version}", code="no_model")
    if row.status != VersionStatus.READY or row.artifact is None:
        raise Conflict(f"model {name!r} version {version} is {row.status}, not ready: it has no artifact",
                       code="not_ready")
    return bytes(row.artifact)


def set_status(conn: Connection, model_id: int, status: VersionStatus, *, error: str | None = None) -> None:
    """Move a version that is not `ready` to `status`; a ready version is never demoted."""
    conn.execute(update(models).where(models.c.id == model_id, models.c.status != VersionStatus.READY)
                 .values(status=status, error=error))


def publish(conn: Connection, model_id: int, *, artifact: bytes, stats: dict[str, Any],
            metrics: dict[str, Any]) -> bool:
    """Write the artifact and `ready` in one statement, inside the caller's transaction; False if the row is gone."""
    result = conn.execute(update(models).where(models.c.id == model_id).values(
        status=VersionStatus.READY, artifact=artifact, artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        stats=stats, metrics=metrics, error=None, trained_at=now_us()))
    return result.rowcount == 1


def _seen_ids(conn: Connection, where: Any, sees: Sees) -> list[int]:
    return [r.id for r in conn.execute(select(models.c.id, models.c.name, models.c.series).where(where))
            if sees(r.name, r.series)]


def delete_version(engine: Engine, name: str, version: int, sees: Sees = everyone) -> None:
    """Delete one version (its job goes with it: a worker training it notices and stops)."""
    with engine.begin() as conn:
        ids = _seen_ids(conn, (models.c.name == name) & (models.c.version == version), sees)
        gone = conn.execute(delete(models).where(models.c.id.in_(ids))).rowcount if ids else 0
    if gone == 0:
        raise NotFound(f"model {name!r} has no version {version}", code="no_model")


def delete_name(engine: Engine, name: str, sees: Sees = everyone) -> None:
    """Delete every version of `name` the caller sees."""
    with engine.begin() as conn:
        ids = _seen_ids(conn, models.c.name == name, sees)
        gone = conn.execute(delete(models).where(models.c.id.in_(ids))).rowcount if ids else 0
    if gone == 0:
        raise NotFound(f"no model named {name!r}", code="no_model")

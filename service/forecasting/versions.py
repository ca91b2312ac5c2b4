"""Which ready model version answers a forecast, its limits and warnings, and where a solver reads its artifact.

Resolved from the database on every request (small indexed queries over the ready versions' metadata, never their
artifacts: by default the versions trained on the series, through `model_series`), so a version published a moment
ago is used by the next request, without a restart, and versions that were deleted drop out of the solvers' caches
(`retain`).

A version's horizon and context length come from its row (`stats`, written with the artifact); a row without them
(none that training writes) has them read from its artifact's JSON header, never its weights. The API process
never rebuilds a model: the solver that answers reads the artifact (`stored_model`) and rebuilds it once.
"""

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from sqlalchemy import Connection, Engine, LargeBinary, func, select

import model
from service.errors import Conflict, NotFound
from service.forecasting.cache import CacheKey, StoredModel
from service.storage.db import reading
from service.storage.registry import Sees, VersionStatus, everyone, ready_trained_on
from service.storage.tables import models
from service.times.durations import format_duration
from service.times.timefmt import US_PER_S

m = models.c


@dataclass(frozen=True)
class _Row:
    """A `ready` row of `models` as `_ready_of` reads it, without its artifact. `size`: the artifact's length in
    bytes."""

    id: int
    name: str
    version: int
    channels: tuple[str, ...]
    series: tuple[str, ...]
    sha256: str
    size: int
    trained_at: int  # µs since the epoch


@dataclass(frozen=True)
class ReadyVersion(_Row):
    """The version that answers: its row, and horizon_s: how far past a context's last observation it forecasts,
    context_s: the history it reads by default (seconds)."""

    horizon_s: float
    context_s: float

    @property
    def cache_key(self) -> CacheKey:
        return CacheKey(self.id, self.version, self.sha256)


RETAIN_EVERY_S = 10.0  # how often a process drops cached models whose version is no longer ready


def _ready_of(source: Connection | Engine, name: str, version: int | None) -> list[tuple[_Row, object]]:
    """The ready versions of `name` (only `version`, when given), newest first, each with its `stats` (where its
    limits are): one index range (name, version)."""
    query = (select(m.id, m.name, m.version, m.channels, m.series, m.artifact_sha256,
                    func.length(m.artifact).label("size"), m.trained_at, m.created_at, m.stats)
             .where(m.name == name, m.status == VersionStatus.READY).order_by(m.version.desc()))
    if version is not None:
        query = query.where(m.version == version)
    with reading(source) as conn:
        rows = conn.execute(query).all()
    return [(_Row(id=r.id, name=r.name, version=r.version, channels=tuple(r.channels), series=tuple(r.series or ()),
                  sha256=r.artifact_sha256 or "", size=int(r.size or 0), trained_at=r.trained_at or r.created_at),
             r.stats) for r in rows]


def _ready(source: Connection | Engine, row: _Row, stats: object) -> ReadyVersion:
    """The chosen row with its horizon and context length: from `stats`, else from its artifact's header."""
    limits = _stats_limits(stats)
    if limits is None:
        header = _artifact_header(source, row)
        limits = header.horizon, header.context_seconds
    return ReadyVersion(**dataclasses.asdict(row), horizon_s=limits[0], context_s=limits[1])


def _stats_limits(stats: object) -> tuple[float, float] | None:
    """(horizon_s, context_s) of a row's `stats`, or None when it lacks either."""
    if not isinstance(stats, dict):
        return None
    horizon, context = stats.get("horizon_s"), stats.get("context_s")
    if (isinstance(horizon, bool) or not isinstance(horizon, int | float)
            or isinstance(context, bool) or not isinstance(context, int | float)):
        return None
    return float(horizon), float(context)


def _artifact_header(source: Connection | Engine, row: _Row) -> model.ArtifactHeader:
    """The artifact's JSON header, read alone: its first 8 bytes say its length, then that many more bytes."""

    def prefix(n: int) -> bytes:
        head = conn.execute(select(func.substr(m.artifact, 1, n, type_=LargeBinary))
                            .where(m.id == row.id, m.artifact_sha256 == row.sha256)).scalar()
        if head is None:  # deleted or republished since `_ready_of`
            raise _changed(row.name, row.version)
        return bytes(head)

    with reading(source) as conn:
        # A corrupt length reads the whole artifact at most, and read_header says what is wrong.
        return model.read_header(prefix(min(model.header_length(prefix(8)), row.size)))


_SEEN_PAGE = 32  # candidates read at a time after the first, for a caller that does not see the newest


def _newest_trained_on(source: Connection | Engine, series_key: str, sees: Sees) -> str | None:
    """The name of the most recently trained ready version (that the caller sees) whose series hold `series_key`.
    Read by the index on `model_series.series_key`: only the versions trained on this series, newest first, the
    first alone (LIMIT 1), and more, a page at a time, only while the caller sees none of those read (a prefixed
    key: versions also trained on other tenants' series are not its)."""
    before: tuple[int, int] | None = None
    page = 1
    with reading(source) as conn:
        while True:
            rows = conn.execute(ready_trained_on(series_key, before=before).limit(page)).all()
            for row in rows:
                if sees(row.name, row.series):
                    return str(row.name)
            if len(rows) < page:
                return None
            before, page = (rows[-1].newest, rows[-1].id), _SEEN_PAGE


class Retains(Protocol):
    """What holds loaded models by CacheKey: a ModelCache, or the batcher on behalf of its solvers."""

    def retain_due(self, every_s: float) -> bool: ...

    def retain(self, live: Iterable[CacheKey]) -> None: ...


def retain(engine: Engine, holder: Retains) -> None:
    """Drop loaded models whose version left the ready set (deleted, retrained over), every RETAIN_EVERY_S."""
    if not holder.retain_due(RETAIN_EVERY_S):
        return
    with engine.connect() as conn:
        rows = conn.execute(select(m.id, m.version, m.artifact_sha256).where(m.status == VersionStatus.READY)).all()
    holder.retain(CacheKey(r.id, r.version, r.artifact_sha256 or "") for r in rows)


def _not_ready(source: Connection | Engine, name: str, version: int | None, sees: Sees) -> Exception:
    """The error for a name (and version) with no ready version: 404 when it does not exist (or the caller may not
    see it), else 409."""
    query = select(m.version, m.status, m.series).where(m.name == name).order_by(m.version.desc())
    if version is not None:
        query = query.where(m.version == version)
    with reading(source) as conn:
        row = next((r for r in conn.execute(query) if sees(name, r.series)), None)
    if row is None:
        if version is None:
            return NotFound(f"no model named {name!r}", code="no_model")
        return NotFound(f"model {name!r} has no version {version}", code="no_model")
    return Conflict(f"model {name!r} version {row.version} is {row.status}, not ready", code="not_ready")


def resolve(source: Connection | Engine, *, name: str | None, version: int | None, series_key: str | None,
            sees: Sees = everyone) -> ReadyVersion:
    """The version to use: `name`/`version` if given; by default the newest ready version of `name`, or, with no
    name, of the newest model trained on `series_key`; only versions the caller sees. Raises NotFound (no_model)
    or Conflict (not_ready)."""
    if name is None:
        name = _newest_trained_on(source, series_key or "", sees)
        if name is None:
            raise NotFound(f"no ready model was trained on series {series_key!r}: train one (POST /v1/models) "
                           "or name one with 'model'", code="no_model")
    candidates = [(v, stats) for v, stats in _ready_of(source, name, version) if sees(v.name, v.series)]
    if not candidates:
        raise _not_ready(source, name, version, sees)
    return _ready(source, *candidates[0])  # the newest version


# How a forecast names each baseline of a version's backtest.
_BASELINES = {"last_value": "last-value", "drift": "drift", "seasonal_naive": "seasonal-naive",
              "classical": "classical (trend and seasonal)"}


def version_warnings(source: Connection | Engine, version: ReadyVersion) -> list[str]:
    """What a forecast by `version` should tell its reader about the version (one primary-key read)."""
    with reading(source) as conn:
        row = conn.execute(select(m.metrics, m.config).where(m.id == version.id)).first()
    if row is None:  # deleted since `resolve`: loading its artifact says so
        return []
    return backtest_warnings(row.metrics, row.config, version.horizon_s)


def backtest_warnings(metrics: object, config: object, horizon_s: float | None = None) -> list[str]:
    """Plain-words warnings from a version's stored `metrics["backtest"]`: it lost to a baseline, its training
    stopped at the time limit, or its bands were checked on its history only part of the way to its horizon
    (`horizon_s`). Metrics without a backtest (global-frame versions) give none; malformed parts are skipped,
    never an error, since a forecast must not fail over them."""
    backtest = metrics.get("backtest") if isinstance(metrics, dict) else None
    if not isinstance(backtest, dict):
        return []
    out = []
    if backtest.get("beats_baselines") is False:
        out.append(_losing(backtest))
    if backtest.get("hit_time_limit") is True:
        limit = config.get("time_limit") if isinstance(config, dict) else None
        out.append("training of this version stopped at its time limit"
                   + (f" ({limit:g} s)" if isinstance(limit, int | float) else "")
                   + " before its planned steps were done, so it may be undertrained: a larger `time_limit` in "
                     "the training config gives it longer")
    until = backtest.get("calibrated_until_s")
    if isinstance(until, int | float) and isinstance(horizon_s, int | float) and 0 <= until < horizon_s:
        out.append(_unchecked(float(until), float(horizon_s)))
    return out


def _unchecked(until: float, horizon: float) -> str:
    whole = format_duration(round(horizon * US_PER_S))
    if until == 0:
        return (f"no forecast of this version could be checked against later readings of its history (too few of "
                f"them, or none within its horizon, {whole}, of an earlier one), so its bands have a normal "
                f"distribution's width and may not hold what they promise")
    return (f"forecasts of this version could be checked against later readings of its history only up to "
            f"{format_duration(round(until * US_PER_S))} ahead, of its horizon of {whole} (its history is too short, "
            f"or its readings too far apart, to check them further): further ahead its bands take their width from "
            f"nearer forecasts and may be too narrow")


def _losing(backtest: Mapping[str, object]) -> str:
    best = backtest.get("best_baseline")
    if not isinstance(best, str):
        return "on its validation backtest this model did worse than a simple baseline"
    label = _BASELINES.get(best, best.replace("_", "-"))
    methods = backtest.get("methods")
    if not isinstance(methods, dict):
        methods = {}
    ours, theirs = _mae(methods.get("model")), _mae(methods.get(best))
    if ours is None or theirs is None or theirs <= 0:
        return f"on its validation backtest this model did worse than the {label} baseline"
    return f"on its validation backtest this model's error was {ours / theirs:.3g}× that of the {label} baseline"


def _mae(method: object) -> float | None:
    mae = method.get("mae") if isinstance(method, dict) else None
    return float(mae) if isinstance(mae, int | float) and math.isfinite(mae) else None


def read_artifact(engine: Engine, version: ReadyVersion) -> bytes:
    """The artifact of `version` (safetensors bytes), as `resolve` found it. Raises Conflict (not_ready) when it was
    deleted or republished since."""
    with engine.connect() as conn:
        artifact = conn.execute(select(m.artifact).where(m.id == version.id,
                                                         m.artifact_sha256 == version.sha256)).scalar()
    if artifact is None:
        raise _changed(version.name, version.version)
    return bytes(artifact)


def _changed(name: str, version: int) -> Conflict:
    return Conflict(f"model {name!r} version {version} changed while loading; retry", code="not_ready")


def stored_model(engine: Engine, version: ReadyVersion) -> StoredModel:
    """`version` as a solver loads it: by its cache key, reading the artifact only when it does not hold it."""
    return StoredModel(version.cache_key, version.size, partial(read_artifact, engine, version))

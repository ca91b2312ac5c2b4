"""The forecasting entry: `answer(request)` plans, solves and answers one forecast request; the routes call it alone.

    answer(ForecastRequest) ─► plan (a worker thread: database reads only)
                                 the version's row: which version, its channels, horizon and context length
                                 the context: observation rows, or the request body's observations
                             ─► solve (batcher.py ─► solver_pool.py: a solver process rebuilds the model from its
                                 artifact, read from the database once per process and version)
                             ─► answer: a ForecastAnswer, in request order

The API process never rebuilds a model: everything the plan checks (channels, horizon, context length) is in the
version's row. Times are integer µs since the epoch until `Plan` turns them into float64 seconds relative to the
context's first time (the origin): float64 seconds since 1970 would keep only ~0.2 µs of precision, and relative
seconds keep the numbers the model sees small. Query times are deduplicated and sorted for the model and put back
in request order in the answer.
"""

from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict

import anyio.to_thread
import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, func, select

import model
from model.arrays import FloatArray, IntArray
from service import ingest
from service.errors import Unavailable, Unprocessable
from service.forecasting import versions
from service.forecasting.batcher import ForecastBatcher
from service.forecasting.query import SampleSpec, TimeSpec
from service.forecasting.solver_pool import SolverUnavailable
from service.forecasting.versions import ReadyVersion
from service.storage import get_series, read_matrix, series_time_range
from service.storage.registry import Sees, everyone
from service.storage.tables import observations
from service.times.durations import format_duration, format_seconds
from service.times.timefmt import US_PER_S, format_time, format_times

# The encoder reads every context point in sequence: beyond this a request would hold a worker for minutes.
MAX_CONTEXT_POINTS = 100_000
o = observations.c
TimesUs = npt.NDArray[np.int64]  # µs since the epoch


@dataclass(frozen=True)
class StoredContext:
    """`GET /v1/series/{key}/forecast`: the context is series `key`'s stored observations, `history_us` of them
    before the last (None: the version's context length)."""

    key: str
    history_us: int | None = None


@dataclass(frozen=True)
class InlineContext:
    """`POST /v1/forecast`: the context is the body's decoded "observations" field (rows or columns, as the
    observations API takes them, at most `max_values` values); nothing is stored."""

    observations: object
    max_values: int


@dataclass(frozen=True)
class ForecastRequest:
    """A parsed forecast request. model/version: None for the default (the newest ready version of the newest model
    trained on the series; an inline request always names its model). sees: which versions the caller may use (the
    series itself the route has checked)."""

    context: StoredContext | InlineContext
    times: TimeSpec
    samples: SampleSpec
    model: str | None = None
    version: int | None = None
    sees: Sees = everyone

    @property
    def part(self) -> Literal["query", "body"]:
        """Where the request's fields are, for error locations."""
        return "query" if isinstance(self.context, StoredContext) else "body"


class ChannelAnswer(TypedDict):
    mean: list[float]
    std: list[float]
    quantiles: dict[str, list[float]]  # keyed by str(float(level))


class VersionName(TypedDict):
    name: str
    version: int


class ForecastAnswer(TypedDict):
    """The response body (api/routes/forecast.py's SeriesForecastOut, or InlineForecastOut without `series`)."""

    series: NotRequired[str]
    model: VersionName
    t: list[str]  # RFC 3339, request order
    kind: list[str]  # "interpolation" up to the context's last observation, else "extrapolation"
    channels: dict[str, ChannelAnswer]
    warnings: list[str]


@dataclass(frozen=True)
class Plan:
    """Everything a forecast needs. at_us: (Q,) request order; unique_s: sorted distinct query times in seconds
    from `origin_us`; inverse: (Q,) index of each query time in unique_s; last_us: the context's last time;
    warnings: what the answer tells its reader about the version (versions.version_warnings)."""

    version: ReadyVersion
    context: model.Sequence
    at_us: TimesUs
    unique_s: FloatArray
    inverse: IntArray
    origin_us: int
    last_us: int
    warnings: tuple[str, ...] = ()


async def answer(request: ForecastRequest, *, engine: Engine, batcher: ForecastBatcher) -> ForecastAnswer:
    """Plan, solve and answer `request`. What the request or the version gets wrong is a service error: 404
    no_model, 409 not_ready, 422 naming the field (solver_error and non_finite_forecast among them), 503
    solver_unavailable."""
    plan = await anyio.to_thread.run_sync(_plan, engine, batcher, request)
    result = await _solve(engine, batcher, plan, request)
    return _answer(plan, result, request)


def _plan(engine: Engine, batcher: ForecastBatcher, request: ForecastRequest) -> Plan:
    versions.retain(engine, batcher)
    context = request.context
    if isinstance(context, StoredContext):
        return plan_series(engine, context.key, request.times, name=request.model, version=request.version,
                           context_us=context.history_us, sees=request.sees)
    assert request.model is not None  # the route requires the inline body's "model"
    return plan_inline(engine, context.observations, request.times, name=request.model, version=request.version,
                       max_values=context.max_values, sees=request.sees)


async def _solve(engine: Engine, batcher: ForecastBatcher, plan: Plan, request: ForecastRequest) -> model.Forecast:
    part, samples = request.part, request.samples
    try:
        return await batcher.forecast(versions.stored_model(engine, plan.version), plan.context, plan.unique_s,
                                      samples=samples.samples, quantiles=samples.quantiles, seed=samples.seed)
    except model.OutOfRangeError as exc:
        # The plan checks the limits first; this names them should the model be stricter.
        lower = format_time(plan.origin_us + int(round(exc.lower * 1e6)))
        upper = format_time(plan.origin_us + int(round(exc.upper * 1e6)))
        late = plan.unique_s.size > 0 and float(plan.unique_s[-1]) > exc.upper
        hint = (f"; {upper} is the context's last observation plus "
                f"{horizon_text(plan.version.horizon_s)}") if late else ""
        raise Unprocessable.at([part, "at"], f"query times must lie within {lower} .. {upper}{hint}: {exc}") from None
    except model.InputError as exc:
        raise Unprocessable.at([part], str(exc)) from None
    except model.SolverError as exc:
        # The model's dynamics blew up for this context and these times: another request may still succeed.
        raise Unprocessable.at([part, "at"], f"the model's ODE solver failed for this context and these times "
                                             f"(try nearer times, less context, or retrain): {exc}",
                               code="solver_error") from None
    except SolverUnavailable as exc:
        raise Unavailable(f"{exc}; try again", code="solver_unavailable", retry_after=1) from None


def _limit_loc(spec: TimeSpec, bad: npt.NDArray[np.bool_], part: str, range_field: str) -> list[str | int]:
    if spec.at is not None:
        return [part, "at", int(np.flatnonzero(bad)[0])]
    return [part, "horizon" if spec.horizon is not None else range_field]


def check_range(spec: TimeSpec, at_us: TimesUs, first_us: int, last_us: int, horizon_s: float,
                part: str) -> None:
    """422 naming the limit for a query time before the first observation or past last + horizon."""
    early = at_us < first_us
    if early.any():
        raise Unprocessable.at(_limit_loc(spec, early, part, "start"),
                               f"{format_time(int(at_us[early][0]))} is before the first observation "
                               f"{format_time(first_us)}: forecasts start there")
    upper_us = last_us + int(round(horizon_s * US_PER_S))
    late = at_us > upper_us
    if late.any():
        raise Unprocessable.at(_limit_loc(spec, late, part, "end"),
                               f"{format_time(int(at_us[late][0]))} is past the model's horizon: forecasts reach "
                               f"{format_time(upper_us)}, the last observation {format_time(last_us)} plus "
                               f"{horizon_text(horizon_s)}")


def horizon_text(horizon_s: float) -> str:
    """The model's horizon in seconds and ISO 8601, and how to get a longer one (for 422 messages)."""
    us = max(int(round(horizon_s * US_PER_S)), 0)
    return (f"the model's horizon of {format_seconds(us)} s ({format_duration(us)}); training with a longer "
            'horizon (POST /v1/models "horizon") extends it')


def make_plan(version: ReadyVersion, t_us: TimesUs, values: FloatArray, at_us: TimesUs,
              warnings: list[str] | tuple[str, ...] = (), key: str | None = None) -> Plan:
    """Build the model's input from context (t_us (T,) int64 sorted, values (T, C) in version.channels order);
    key: the stored series it comes from (a version trained on several series forecasts each with its own
    classical component), None for observations sent in a request."""
    origin = int(t_us[0])
    context = model.Sequence(times=(t_us - origin) / US_PER_S, values=values, channels=version.channels, key=key)
    unique_us, inverse = np.unique(at_us, return_inverse=True)
    return Plan(version=version, context=context, at_us=at_us, unique_s=(unique_us - origin) / US_PER_S,
                inverse=inverse, origin_us=origin, last_us=int(t_us[-1]), warnings=tuple(warnings))


def _last_at_or_before(conn: Connection, series_id: int, channels: list[str], t_us: int) -> int:
    """The latest observation time <= t_us over `channels` (t_us itself when there is none).

    The context must begin at or before the earliest query time: the model answers only inside its context and
    after it, and the observation just before that time is what pins the interpolation down."""
    found = []
    for channel in channels:  # one probe of the primary key (series_id, channel, t) each
        t = conn.execute(select(func.max(o.t)).where(o.series_id == series_id, o.channel == channel,
                                                     o.t <= t_us)).scalar()
        if t is not None:
            found.append(int(t))
    return max(found, default=t_us)


def plan_series(engine: Engine, key: str, spec: TimeSpec, *, name: str | None, version: int | None,
                context_us: int | None, sees: Sees = everyone) -> Plan:
    """Resolve series, version and context for `GET /v1/series/{key}/forecast` (blocking: run in a thread).
    `sees`: which versions the caller may use (the series itself the route has checked). Every read runs on one
    connection, in one transaction: one snapshot of the series, its versions and its observations."""
    with engine.connect() as conn:
        record = get_series(conn, key)
        chosen = versions.resolve(conn, name=name, version=version, series_key=key, sees=sees)
        missing = [c for c in chosen.channels if c not in record.channels]
        if missing:
            raise Unprocessable.at(["query", "model"], f"model {chosen.name!r} version {chosen.version} needs "
                                                       f"channels {missing} that series {key!r} lacks")
        channels = list(chosen.channels)
        bounds = series_time_range(conn, record.id, channels)
        if bounds is None:
            raise Unprocessable.at(["path", "key"], f"series {key!r} has no observations in channels {channels}: "
                                                    "nothing to condition a forecast on")
        first_us, last_us = bounds
        at_us = spec.times(last_us)
        check_range(spec, at_us, first_us, last_us, chosen.horizon_s, "query")
        history_us = context_us if context_us is not None else int(round(chosen.context_s * US_PER_S))
        start_us = _last_at_or_before(conn, record.id, channels, min(last_us - history_us, int(at_us.min())))
        t_us, values = read_matrix(conn, record.id, channels, start_us, last_us + 1)
        if t_us.size > MAX_CONTEXT_POINTS:
            raise Unprocessable.at(["query", "context"], f"the context from {format_time(start_us)} holds "
                                                         f"{t_us.size} observation times, more than "
                                                         f"{MAX_CONTEXT_POINTS}: ask for later times or a shorter "
                                                         "context")
        warnings = versions.version_warnings(conn, chosen)
    return make_plan(chosen, t_us, values, at_us, warnings, key)


def plan_inline(engine: Engine, observations: object, spec: TimeSpec, *, name: str, version: int | None,
                max_values: int, sees: Sees = everyone) -> Plan:
    """Resolve the version and build the context from observations in a request body (nothing is stored).

    observations: the decoded "observations" field, rows (a list) or columns (an object), as the observations
    API takes them. Blocking: run in a thread."""
    with engine.connect() as conn:  # one snapshot of the version's row
        chosen = versions.resolve(conn, name=name, version=version, series_key=None, sees=sees)
        warnings = versions.version_warnings(conn, chosen)
    channels = list(chosen.channels)
    batch = _parse_inline(observations, channels, max_values)
    if batch.t.size == 0:
        raise Unprocessable.at(["body", "observations"], f"no observations of channels {channels}: nothing to "
                                                         "condition a forecast on")
    t_us, pos = np.unique(batch.t, return_inverse=True)
    if t_us.size > MAX_CONTEXT_POINTS:
        raise Unprocessable.at(["body", "observations"], f"{t_us.size} observation times, more than "
                                                         f"{MAX_CONTEXT_POINTS}")
    values = np.full((t_us.size, len(channels)), np.nan)
    values[pos, batch.ch] = batch.v
    at_us = spec.times(int(t_us[-1]))
    check_range(spec, at_us, int(t_us[0]), int(t_us[-1]), chosen.horizon_s, "body")
    return make_plan(chosen, t_us, values, at_us, warnings)


def _parse_inline(observations: object, channels: list[str], max_values: int) -> ingest.Batch:
    if isinstance(observations, list):  # rows: its error locations are body.observations.<i>… already
        return ingest.parse_observation_document({"observations": observations}, channels, max_values)
    if not isinstance(observations, dict):
        raise Unprocessable.at(["body", "observations"], "expected rows [{\"t\", \"values\"}, …] or columns "
                                                         "{\"t\": […], \"values\": {…}}")
    try:
        return ingest.parse_observation_document(observations, channels, max_values)
    except Unprocessable as exc:
        # The columns form sits one level down in this body: body.t.3 is body.observations.t.3 here.
        details = [{**d, "loc": ["body", "observations", *d["loc"][1:]]} for d in exc.details]
        first = details[0]
        raise Unprocessable(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", details=details) from None


def _answer(plan: Plan, result: model.Forecast, request: ForecastRequest) -> ForecastAnswer:
    """The answer, in request order. `result`: model.Forecast over plan.unique_s (mean/std (Q, C), quantiles
    (K, Q, C)).

    Raises Unprocessable (422 non_finite_forecast) when any number is NaN or infinite: JSON cannot carry them, and
    they come from the model and the context (a model trained on values near the float64 limit), not from a fault.
    """
    inv = plan.inverse
    mean, std, quantiles = np.asarray(result.mean), np.asarray(result.std), np.asarray(result.quantiles)
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and np.isfinite(quantiles).all()):
        raise Unprocessable.at([request.part, "at"], f"the forecast of model {plan.version.name!r} version "
                                                     f"{plan.version.version} at these times is not finite (it "
                                                     "overflows float64): the model or this context holds values "
                                                     f"too large; retrain on values {ingest.VALUE_RANGE}",
                               code="non_finite_forecast")
    # The model may return the levels in its own (sorted) order: look each asked level up by value.
    row = {float(level): k for k, level in enumerate(result.quantile_levels)}
    channels: dict[str, ChannelAnswer] = {}
    for c, name in enumerate(plan.version.channels):
        channels[name] = {
            "mean": mean[inv, c].tolist(),
            "std": std[inv, c].tolist(),
            "quantiles": {str(q): quantiles[row[q]][inv, c].tolist() for q in request.samples.quantiles},
        }
    body: ForecastAnswer = {
        "model": {"name": plan.version.name, "version": plan.version.version},
        "t": format_times(plan.at_us),
        "kind": np.where(plan.at_us <= plan.last_us, "interpolation", "extrapolation").tolist(),
        "channels": channels,
        "warnings": list(plan.warnings),
    }
    if isinstance(request.context, StoredContext):
        return {"series": request.context.key, **body}
    return body

"""Forecasts: `GET /v1/series/{key}/forecast` (conditioned on stored observations) and `POST /v1/forecast`
(conditioned on observations in the body, nothing stored).

The handlers are `async` so that concurrent requests meet in the batcher; database reads and model loading run in
the thread pool, the solve in the batcher's threads.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

import model
from service import forecasting
from service.api.deps import BatcherDep, EngineDep, ModelCacheDep, ReadScope
from service.errors import Unprocessable, responses
from service.forecast_query import (
    DEFAULT_SAMPLES,
    MAX_SAMPLES,
    SampleSpec,
    parse_duration_param,
    parse_query_quantiles,
    parse_time_spec,
)
from service.timefmt import format_time

router = APIRouter(tags=["forecasts"])


class ChannelForecast(BaseModel):
    mean: list[float]
    std: list[float]
    quantiles: dict[str, list[float]] = Field(description="Keyed by str(float(level)), e.g. '0.05'")


class ModelRef(BaseModel):
    name: str
    version: int


class InlineForecastOut(BaseModel):
    model: ModelRef
    t: list[str] = Field(description="RFC 3339 times, in request order")
    kind: list[str] = Field(description="'interpolation' up to the context's last observation, else "
                                        "'extrapolation'")
    channels: dict[str, ChannelForecast]


class SeriesForecastOut(InlineForecastOut):
    series: str


_ERRORS = responses(401, 403, 404, 409, 422)


async def _solve(batcher: Any, plan: forecasting.Plan, samples: SampleSpec, part: str) -> Any:
    try:
        return await batcher.forecast(plan.version.cache_key, plan.fitted, plan.context, plan.unique_s,
                                      samples=samples.samples, quantiles=samples.quantiles, seed=samples.seed)
    except model.OutOfRangeError as exc:
        # The service checks the limits first; this names them should the model be stricter.
        lower = format_time(plan.origin_us + int(round(exc.lower * 1e6)))
        upper = format_time(plan.origin_us + int(round(exc.upper * 1e6)))
        raise Unprocessable.at([part, "at"], f"query times must lie within {lower} .. {upper}: {exc}") from None
    except model.InputError as exc:
        raise Unprocessable.at([part], str(exc)) from None


@router.get("/series/{key}/forecast", dependencies=[ReadScope], response_model=SeriesForecastOut,
            responses=_ERRORS, summary="Forecast a stored series at any times, with uncertainty")
async def forecast_series(
    engine: EngineDep,
    cache: ModelCacheDep,
    batcher: BatcherDep,
    key: Annotated[str, Path(max_length=128)],
    at: Annotated[list[str] | None, Query(description="A query time (RFC 3339 or Unix seconds); repeatable, "
                                                      "unsorted and repeated allowed")] = None,
    start: Annotated[str | None, Query(max_length=64, description="First time of a range")] = None,
    end: Annotated[str | None, Query(max_length=64, description="Last time of a range (inclusive)")] = None,
    step: Annotated[str | None, Query(max_length=64, description="Seconds or ISO 8601 (PT15M)")] = None,
    horizon: Annotated[str | None, Query(max_length=64, description="From the last observation: seconds or "
                                                                    "ISO 8601")] = None,
    model_name: Annotated[str | None, Query(alias="model", max_length=128)] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    quantiles: Annotated[str | None, Query(max_length=2000, description="Comma list in (0, 1)")] = None,
    samples: Annotated[int, Query(ge=1, le=MAX_SAMPLES)] = DEFAULT_SAMPLES,
    seed: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    context: Annotated[str | None, Query(max_length=64, description="History the encoder reads: seconds or "
                                                                    "ISO 8601; default from the model")] = None,
) -> JSONResponse:
    spec = parse_time_spec(at, start, end, step, horizon)
    sample_spec = SampleSpec(quantiles=parse_query_quantiles(quantiles), samples=samples, seed=seed)
    context_us = parse_duration_param(context, ["query", "context"])
    plan = await run_in_threadpool(forecasting.plan_series, engine, cache, key, spec, name=model_name,
                                   version=version, context_us=context_us)
    result = await _solve(batcher, plan, sample_spec, "query")
    return JSONResponse(forecasting.response_body(plan, result, sample_spec, series=key))

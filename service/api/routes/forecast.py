"""Forecasts: `GET /v1/series/{key}/forecast` (conditioned on stored observations) and `POST /v1/forecast`
(conditioned on observations in the body, nothing stored).

Each handler parses its request into a `ForecastRequest` and makes one forecasting call,
`service.forecasting.forecast.answer`, which plans, solves and answers. The handlers are `async` so that concurrent
requests meet in the batcher.
"""

import re
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field, StringConstraints, WithJsonSchema

from service.api.deps import BatcherDep, EngineDep, Reader, SettingsDep
from service.api.responses import NumbersResponse
from service.api.routes.series import check_sees
from service.api.schemas import DURATION_PATTERN, KEY_PATTERN, TIME_PATTERN, TIME_SCHEMA
from service.errors import Unprocessable, responses
from service.forecasting.forecast import ForecastRequest, InlineContext, StoredContext, answer
from service.forecasting.query import (
    DEFAULT_SAMPLES,
    MAX_SAMPLES,
    SampleSpec,
    parse_body_samples,
    parse_body_times,
    parse_duration_param,
    parse_query_quantiles,
    parse_time_spec,
)
from service.ingest import decode_json

QUANTILES_PATTERN = r"^0?\.[0-9]{0,15}[1-9](,0?\.[0-9]{0,15}[1-9])*$"  # levels in (0, 1), comma-separated

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
    warnings: list[str] = Field(description="What to know about the version that answered, in plain words (empty "
                                            "when nothing): it lost to a simple baseline on its validation "
                                            "backtest, or its training stopped at its time limit")


class SeriesForecastOut(InlineForecastOut):
    series: str


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return responses(*statuses, stored="a query time before the context's first observation or past the model's "
                                       "trained horizon (the message names the limit), or no observations in the "
                                       "model's channels")


_ERRORS = _errors(401, 403, 404, 409, 422, 503)


# The document states the common forms; the parser takes more (any number of digits, days 29-31) and says why not.
TimeText = Annotated[str, StringConstraints(max_length=64),
                     WithJsonSchema({"type": "string", "maxLength": 64, "pattern": TIME_PATTERN})]


@router.get("/series/{key}/forecast", response_model=SeriesForecastOut,
            responses=_ERRORS, summary="Forecast a stored series at any times, with uncertainty")
async def forecast_series(
    engine: EngineDep,
    caller: Reader,
    batcher: BatcherDep,
    key: Annotated[str, Path(pattern=KEY_PATTERN, max_length=128)],
    at: Annotated[list[TimeText] | None, Query(description="A query time (RFC 3339 or Unix seconds); repeatable, "
                                                           "unsorted and repeated allowed")] = None,
    start: Annotated[str | None, Query(max_length=64, json_schema_extra={"pattern": TIME_PATTERN},
                                       description="First time of a range")] = None,
    end: Annotated[str | None, Query(max_length=64, json_schema_extra={"pattern": TIME_PATTERN},
                                     description="Last time of a range (inclusive)")] = None,
    step: Annotated[str | None, Query(max_length=64, json_schema_extra={"pattern": DURATION_PATTERN},
                                      description="Seconds or ISO 8601 (PT15M)")] = None,
    horizon: Annotated[str | None, Query(max_length=64, json_schema_extra={"pattern": DURATION_PATTERN},
                                         description="From the last observation: seconds or ISO 8601")] = None,
    model_name: Annotated[str | None, Query(alias="model", pattern=KEY_PATTERN, max_length=128)] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    quantiles: Annotated[str | None, Query(max_length=2000, description="Comma list in (0, 1)",
                                            # stated, not enforced: the parser names the level at fault
                                            json_schema_extra={"pattern": QUANTILES_PATTERN})] = None,
    samples: Annotated[int, Query(ge=1, le=MAX_SAMPLES)] = DEFAULT_SAMPLES,
    seed: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    context: Annotated[str | None, Query(max_length=64, json_schema_extra={"pattern": DURATION_PATTERN},
                                         description="History the encoder reads: seconds or ISO 8601; "
                                                     "default from the model")] = None,
) -> NumbersResponse:
    spec = parse_time_spec(at, start, end, step, horizon)
    sample_spec = SampleSpec(quantiles=parse_query_quantiles(quantiles), samples=samples, seed=seed)
    context_us = parse_duration_param(context, ["query", "context"])
    check_sees(caller, key)
    request = ForecastRequest(StoredContext(key, context_us), spec, sample_spec, model=model_name, version=version,
                              sees=caller.sees_model)
    return NumbersResponse(await answer(request, engine=engine, batcher=batcher))


_TIME = TIME_SCHEMA
_INLINE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "title": "InlineForecastRequest", "type": "object", "additionalProperties": False,
    "required": ["model", "observations", "at"],
    "properties": {
        "model": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": KEY_PATTERN},
        "version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1,
                    "description": "default: the newest ready version"},
        "observations": {"description": "rows or columns, as POST /v1/series/{key}/observations takes them",
                         "oneOf": [{"type": "array", "items": {"type": "object", "required": ["t", "values"]}},
                                   {"type": "object", "required": ["t", "values"]}]},
        "at": {"type": "array", "items": _TIME, "minItems": 1, "maxItems": 10_000},
        "quantiles": {"type": "array", "minItems": 1, "uniqueItems": True,
                      "items": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}},
        "samples": {"type": "integer", "minimum": 1, "maximum": MAX_SAMPLES},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    }}}}}}
_BODY_KEYS = {"model", "version", "observations", "at", "quantiles", "samples", "seed"}


def _inline_request(doc: object) -> tuple[str, int | None]:
    """Check the body's shape; return (model name, version or None)."""
    if not isinstance(doc, dict):
        raise Unprocessable.at(["body"], f"expected a JSON object, got {type(doc).__name__}")
    unknown = sorted(doc.keys() - _BODY_KEYS)
    if unknown:
        raise Unprocessable.at(["body", unknown[0]], f"unexpected field; allowed: {', '.join(sorted(_BODY_KEYS))}")
    for field in ("model", "observations", "at"):
        if field not in doc:
            raise Unprocessable.at(["body", field], "field required")
    name = doc["model"]
    if not isinstance(name, str) or not re.fullmatch(KEY_PATTERN, name):
        raise Unprocessable.at(["body", "model"], "expected a model name (1 to 128 letters, digits, '.', '_', '-')")
    version = doc.get("version")
    if (isinstance(version, Decimal) and version.is_finite() and 1 <= version <= 2**31 - 1
            and version == version.to_integral_value()):
        version = int(version)  # 3.0 is the integer 3 in JSON, as the schema says (bodies decode numbers as Decimal)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or not 1 <= version <= 2**31 - 1):  # the range of version numbers, as in the path
        raise Unprocessable.at(["body", "version"], f"expected an integer from 1 to {2**31 - 1}, "
                                                    f"got {str(version)[:32]}")
    return name, version


@router.post("/forecast", response_model=InlineForecastOut,
             responses=_errors(401, 403, 404, 409, 413, 422, 503), openapi_extra=_INLINE_BODY,
             summary="Forecast observations given in the request (nothing is stored)")
async def forecast_inline(request: Request, engine: EngineDep, settings: SettingsDep, batcher: BatcherDep,
                          caller: Reader) -> NumbersResponse:
    doc = decode_json(await request.body())
    name, version = _inline_request(doc)
    spec = parse_body_times(doc["at"])
    sample_spec = parse_body_samples(doc)
    inline = ForecastRequest(InlineContext(doc["observations"], settings.max_values_per_request), spec, sample_spec,
                             model=name, version=version, sees=caller.sees_model)
    return NumbersResponse(await answer(inline, engine=engine, batcher=batcher))

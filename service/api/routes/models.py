"""Models: train a new version, list names, read versions and their artifacts, delete."""

import hashlib
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool

from service.api.deps import EngineDep, Reader, SettingsDep, Writer
from service.api.pagination import after_name, name_cursor
from service.api.routes.jobs import JobPublic, job_public
from service.api.schemas import DURATION_PATTERN, KEY_PATTERN
from service.errors import Forbidden, responses
from service.storage import jobs, registry
from service.storage.registry import VersionStatus
from service.times.durations import MAX_US, DurationParseError, parse_duration
from service.times.timefmt import US_PER_S, format_time
from service.training import executor
from service.training import request as train_request

router = APIRouter(prefix="/models", tags=["models"])

NAME_PATTERN = KEY_PATTERN  # model names follow the series-key pattern
ModelName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=128)]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _seconds(value: object) -> float | None:
    """A training duration as float seconds: a JSON number of seconds, or a string `parse_duration` reads."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PydanticCustomError("duration", "expected seconds (a number) or an ISO 8601 duration (a string)")
    if isinstance(value, str) and len(value) > 64:
        raise PydanticCustomError("duration", "a duration is at most 64 characters")
    try:  # a number goes through its shortest text, so 0.1 is 100_000 µs and 1e-7 rounds to zero, as its string does
        return parse_duration(value if isinstance(value, str) else repr(value)) / US_PER_S
    except DurationParseError as exc:
        raise PydanticCustomError("duration", "{reason}", {"reason": str(exc)}) from None


_DURATION_SCHEMA = {"oneOf": [
    {"type": "number", "minimum": 1 / US_PER_S, "maximum": MAX_US / US_PER_S,
     "description": "seconds, kept to the µs"},
    {"type": "string", "minLength": 1, "maxLength": 64, "examples": ["P90D", "PT30M", "900"],
     "pattern": DURATION_PATTERN,
     "description": "ISO 8601 in weeks, days, hours, minutes and seconds, or seconds as a decimal"},
]}
TrainingDuration = Annotated[float | None, PlainValidator(_seconds), WithJsonSchema(_DURATION_SCHEMA)]


class TrainRequest(BaseModel):
    # `series` or `series_prefix`, not null: stated in the schema, checked by train_request.series_keys.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["series"], "properties": {"series": {"type": "array"}}},
        {"required": ["series_prefix"], "properties": {"series_prefix": {"type": "string"}}}]})

    name: str = Field(pattern=NAME_PATTERN, max_length=128, description="The model's name (a series-key-like slug)")
    series: list[Annotated[str, Field(pattern=KEY_PATTERN, max_length=128)]] | None = Field(
        None, min_length=1, max_length=train_request.MAX_TRAINING_SERIES, json_schema_extra={"uniqueItems": True},
        description="Keys of the series to train on; their common channels are used. Give this or `series_prefix`")
    series_prefix: str | None = Field(
        None, min_length=1, max_length=128, pattern=KEY_PATTERN,  # a key's beginning: the same characters
        description="Train on every series whose key starts with this (case-sensitive, no wildcards); the version "
                    "stores the keys it matched. Give this or `series`")
    horizon: TrainingDuration = Field(
        None, description="How far past the last observation forecasts must reach: seconds or ISO 8601 (P90D). "
                          "Sets the config's `horizon` (in seconds), over a value given there")
    context: TrainingDuration = Field(
        None, description="How much history the model reads before forecasting: seconds or ISO 8601 (P365D). "
                          "Sets the config's `context` (in seconds), over a value given there")
    config: dict[str, Any] = Field(default_factory=dict, max_length=64,
                                   description="ModelConfig overrides by field name")


class VersionRef(BaseModel):
    name: str
    version: int
    status: VersionStatus


class VersionPublic(BaseModel):
    name: str
    version: int
    status: VersionStatus
    config: dict[str, Any]
    channels: list[str]
    series: list[str]
    metrics: dict[str, Any] | None = Field(
        description="Set when training ends: epochs_run, train_loss, val_mse (the saved weights'), best_epoch, "
                    "last_val_mse; and `backtest` when training ran one: cutoffs, points, steps, hit_time_limit, "
                    "network_trained, stopped_early, "
                    "per method (model, classical, last_value, drift, seasonal_naive) mae, mse, rmae, coverage90, "
                    "interval90 and bands by horizon, best_baseline, beats_baselines")
    horizon_s: float | None = Field(
        description="Set when training ends: how far past a series' last observation this version forecasts, in "
                    "seconds (the `horizon` given, or the one chosen from the data)")
    context_s: float | None = Field(
        description="Set when training ends: how much history the version reads before forecasting, in seconds")
    error: str | None
    created_at: str
    trained_at: str | None


class TrainAccepted(BaseModel):
    model: VersionRef
    job: JobPublic


class ModelVersions(BaseModel):
    name: str
    versions: list[VersionPublic]


class ModelPage(BaseModel):
    items: list[VersionPublic] = Field(description="Each model name with its newest version")
    next_cursor: str | None


def version_public(v: registry.Version) -> VersionPublic:
    stats = v.stats or {}  # None until training ends
    return VersionPublic(name=v.name, version=v.version, status=v.status, config=v.config, channels=v.channels,
                         series=v.series, metrics=v.metrics, horizon_s=stats.get("horizon_s"),
                         context_s=stats.get("context_s"), error=v.error, created_at=format_time(v.created_at),
                         trained_at=format_time(v.trained_at) if v.trained_at is not None else None)


def _request_hash(body: TrainRequest) -> str:
    # Fields left out are dropped, so a body without the newer fields hashes as it did before they existed.
    doc = {k: v for k, v in body.model_dump(mode="json").items() if v is not None}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@router.post("", status_code=202, responses=responses(
                 401, 403, 404, 409, 422, 503, 507, stored="the series share no channel, or hold too little data to "
                 "train on, or no series key starts with `series_prefix`"),
             summary="Train a new version of a model in the background")
def train(body: TrainRequest, engine: EngineDep, settings: SettingsDep, caller: Writer,
          idempotency_key: Annotated[str | None, Header(min_length=1, max_length=256,
                                                        description="Retrying with the same key and body "
                                                                    "returns the first answer")] = None,
          ) -> TrainAccepted:
    if not body.name.startswith(caller.tenant):  # a tenant's model names live inside its prefix
        raise Forbidden(f"this API key is limited to series keys starting with {caller.prefix!r}: its model names "
                        "must start with it too")
    keys = train_request.series_keys(engine, body.series, body.series_prefix, caller)
    durations = {"horizon": body.horizon, "context": body.context}
    overrides = {**body.config, **{k: v for k, v in durations.items() if v is not None}}
    plan = train_request.plan(engine, keys, overrides, caller)
    job, created = jobs.create_training(engine, job_id=str(uuid.uuid4()), name=body.name, config=plan.config,
                                        channels=plan.channels, series=plan.series, idempotency_key=idempotency_key,
                                        request_hash=_request_hash(body), owner=caller.key_id, tenant=caller.tenant,
                                        max_active=settings.max_active_jobs_per_key)
    if created:
        executor.submit(settings, job.id)  # after the commit; if it fails the sweeper sends it
        # The state this request committed: a worker may already be at it, but the answer stays self-consistent.
        queued = VersionRef(name=job.model_name, version=job.model_version, status=VersionStatus.QUEUED)
        return TrainAccepted(model=queued, job=job_public(job))
    # An idempotent retry: the first request's version and job, as they are now.
    version = registry.get_by_id(engine, job.model_id)
    return TrainAccepted(model=VersionRef(name=version.name, version=version.version, status=version.status),
                         job=job_public(jobs.get_job(engine, job.id)))


@router.get("", responses=responses(401, 403, 422, 503),
            summary="Model names with their newest version")
def list_models(engine: EngineDep, caller: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                cursor: Annotated[str | None, Query(max_length=512)] = None) -> ModelPage:
    after = after_name(cursor) if cursor else None
    items = registry.list_newest(engine, limit=limit + 1, after=after, name_prefix=caller.prefix,
                                 sees=caller.sees_model)
    more = len(items) > limit
    items = items[:limit]
    next_cursor = name_cursor(items[-1].name) if more else None
    return ModelPage(items=[version_public(v) for v in items], next_cursor=next_cursor)


@router.get("/{name}", responses=responses(401, 403, 404, 422, 503),
            summary="A model's versions, newest first")
def get_model(engine: EngineDep, name: ModelName, caller: Reader) -> ModelVersions:
    versions = registry.list_versions(engine, name, caller.sees_model)
    return ModelVersions(name=name, versions=[version_public(v) for v in versions])


@router.get("/{name}/versions/{version}", responses=responses(401, 403, 404, 422, 503),
            summary="One version of a model")
def get_version(engine: EngineDep, name: ModelName, version: VersionNumber, caller: Reader) -> VersionPublic:
    return version_public(registry.get_version(engine, name, version, caller.sees_model))


@router.get("/{name}/versions/{version}/artifact", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "The saved model (safetensors with its JSON config); `model.load` "
                                            "reads it"},
                       **responses(401, 403, 404, 409, 422, 503)},
            summary="Download a ready version's saved model")
async def get_artifact(engine: EngineDep, name: ModelName, version: VersionNumber, caller: Reader) -> Response:
    blob = await run_in_threadpool(registry.read_artifact, engine, name, version, caller.sees_model)
    return Response(blob, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}-v{version}.safetensors"'})


@router.delete("/{name}/versions/{version}", status_code=204,
               responses=responses(401, 403, 404, 422, 503, 507), summary="Delete one version (a running job stops)")
def delete_version(engine: EngineDep, name: ModelName, version: VersionNumber, caller: Writer) -> Response:
    registry.delete_version(engine, name, version, caller.sees_model)
    return Response(status_code=204)


@router.delete("/{name}", status_code=204, responses=responses(401, 403, 404, 422, 503, 507),
               summary="Delete a model: every version (a tenant's key: every version it sees)")
def delete_model(engine: EngineDep, name: ModelName, caller: Writer) -> Response:
    registry.delete_name(engine, name, caller.sees_model)
    return Response(status_code=204)

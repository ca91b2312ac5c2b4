"""Models: train a new version, list names, read versions and their artifacts, delete."""

import hashlib
import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from service import executor, jobs, registry, train_request
from service.api.deps import EngineDep, ReadScope, SettingsDep, WriteScope
from service.api.pagination import after_name, name_cursor
from service.api.routes.jobs import JobPublic, job_public
from service.api.schemas import KEY_PATTERN
from service.errors import Unprocessable, responses
from service.timefmt import format_time

router = APIRouter(prefix="/models", tags=["models"])

NAME_PATTERN = KEY_PATTERN  # model names follow the series-key pattern
ModelName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=128)]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]
VersionStatus = Literal["queued", "training", "ready", "failed", "cancelled"]


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=128, description="The model's name (a series-key-like slug)")
    series: list[Annotated[str, Field(pattern=KEY_PATTERN, max_length=128)]] = Field(
        min_length=1, max_length=100, description="Keys of the series to train on; their common channels are used")
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
    metrics: dict[str, Any] | None
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
    return VersionPublic(name=v.name, version=v.version, status=v.status, config=v.config, channels=v.channels,
                         series=v.series, metrics=v.metrics, error=v.error, created_at=format_time(v.created_at),
                         trained_at=format_time(v.trained_at) if v.trained_at is not None else None)


def _request_hash(body: TrainRequest) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


@router.post("", status_code=202, dependencies=[WriteScope], responses=responses(401, 403, 404, 409, 422),
             summary="Train a new version of a model in the background")
def train(body: TrainRequest, engine: EngineDep, settings: SettingsDep,
          idempotency_key: Annotated[str | None, Header(min_length=1, max_length=256,
                                                        description="Retrying with the same key and body "
                                                                    "returns the first answer")] = None,
          ) -> TrainAccepted:
    if len(set(body.series)) != len(body.series):
        raise Unprocessable.at(["body", "series"], "series keys must be distinct")
    plan = train_request.plan(engine, body.series, body.config)
    job, created = jobs.create_training(engine, job_id=str(uuid.uuid4()), name=body.name, config=plan.config,
                                        channels=plan.channels, series=plan.series, idempotency_key=idempotency_key,
                                        request_hash=_request_hash(body))
    if created:
        executor.submit(settings, job.id)  # after the commit; if it fails the sweeper sends it
        # The state this request committed: a worker may already be at it, but the answer stays self-consistent.
        return TrainAccepted(model=VersionRef(name=job.model_name, version=job.model_version, status="queued"),
                             job=job_public(job))
    # An idempotent retry: the first request's version and job, as they are now.
    version = registry.get_by_id(engine, job.model_id)
    return TrainAccepted(model=VersionRef(name=version.name, version=version.version, status=version.status),
                         job=job_public(jobs.get_job(engine, job.id)))


@router.get("", dependencies=[ReadScope], responses=responses(401, 403, 422),
            summary="Model names with their newest version")
def list_models(engine: EngineDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                cursor: Annotated[str | None, Query(max_length=512)] = None) -> ModelPage:
    after = after_name(cursor) if cursor else None
    items = registry.list_newest(engine, limit=limit + 1, after=after)
    more = len(items) > limit
    items = items[:limit]
    next_cursor = name_cursor(items[-1].name) if more else None
    return ModelPage(items=[version_public(v) for v in items], next_cursor=next_cursor)


@router.get("/{name}", dependencies=[ReadScope], responses=responses(401, 403, 404, 422),
            summary="A model's versions, newest first")
def get_model(engine: EngineDep, name: ModelName) -> ModelVersions:
    return ModelVersions(name=name, versions=[version_public(v) for v in registry.list_versions(engine, name)])


@router.get("/{name}/versions/{version}", dependencies=[ReadScope], responses=responses(401, 403, 404, 422),
            summary="One version of a model")
def get_version(engine: EngineDep, name: ModelName, version: VersionNumber) -> VersionPublic:
    return version_public(registry.get_version(engine, name, version))


@router.get("/{name}/versions/{version}/artifact", dependencies=[ReadScope], response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "The saved model (safetensors with its JSON config); `model.load` "
                                            "reads it"},
                       **responses(401, 403, 404, 409, 422)},
            summary="Download a ready version's saved model")
async def get_artifact(engine: EngineDep, name: ModelName, version: VersionNumber) -> Response:
    blob = await run_in_threadpool(registry.read_artifact, engine, name, version)
    return Response(blob, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}-v{version}.safetensors"'})


@router.delete("/{name}/versions/{version}", status_code=204, dependencies=[WriteScope],
               responses=responses(401, 403, 404, 422), summary="Delete one version (a running job stops)")
def delete_version(engine: EngineDep, name: ModelName, version: VersionNumber) -> Response:
    registry.delete_version(engine, name, version)
    return Response(status_code=204)


@router.delete("/{name}", status_code=204, dependencies=[WriteScope], responses=responses(401, 403, 404, 422),
               summary="Delete a model: every version")
def delete_model(engine: EngineDep, name: ModelName) -> Response:
    registry.delete_name(engine, name)
    return Response(status_code=204)

"""Jobs: list, get, follow (server-sent events), cancel."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from service.api.deps import EngineDep, Reader, Writer
from service.api.pagination import after_job, job_cursor
from service.errors import NotFound, TooManyRequests, responses
from service.storage import jobs
from service.storage.jobs import JobStatus
from service.times.timefmt import format_time

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$", description="The job's id (a UUID)")]
# How often an event stream looks at the job row. Progress is written once per epoch, so this is plenty.
EVENT_POLL_S = 0.25
KEEPALIVE_S = 15.0


class Progress(BaseModel):
    epoch: int
    epochs: int
    loss: float | None
    val_mse: float | None
    elapsed_s: float
    eta_s: float | None


class ModelRef(BaseModel):
    name: str | None
    version: int | None


class JobPublic(BaseModel):
    id: str
    kind: Literal["train"]
    status: JobStatus
    model: ModelRef
    progress: Progress | None
    attempts: int
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class JobPage(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None


def job_public(job: jobs.Job) -> JobPublic:
    return JobPublic(
        id=job.id, kind="train", status=job.status, model=ModelRef(name=job.model_name, version=job.model_version),
        progress=Progress(**job.progress) if job.progress else None, attempts=job.attempts, error=job.error,
        created_at=format_time(job.created_at),
        started_at=format_time(job.started_at) if job.started_at is not None else None,
        finished_at=format_time(job.finished_at) if job.finished_at is not None else None)


@router.get("", responses=responses(401, 403, 422, 503),
            summary="Jobs, newest first")
def list_jobs(engine: EngineDep, caller: Reader, status: JobStatus | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 50,
              cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
              = None) -> JobPage:
    items = jobs.list_jobs(engine, status=status, limit=limit + 1, after=after_job(cursor) if cursor else None,
                           name_prefix=caller.prefix, sees=caller.sees_model)
    more = len(items) > limit
    items = items[:limit]
    return JobPage(items=[job_public(j) for j in items],
                   next_cursor=job_cursor(items[-1].created_at, items[-1].id) if more else None)


@router.get("/{job_id}", responses=responses(401, 403, 404, 422, 503), summary="One job")
def get_job(engine: EngineDep, job_id: JobId, caller: Reader) -> JobPublic:
    return job_public(jobs.get_job(engine, job_id, caller.sees_model))


def _sse(event: str, seq: int, job: jobs.Job) -> str:
    return f"id: {seq}\nevent: {event}\ndata: {json.dumps(job_public(job).model_dump(mode='json'))}\n\n"


async def _follow(engine: Engine, request: Request, first: jobs.Job) -> AsyncIterator[str]:
    """An event whenever the job's status or progress changes (`progress`), then one `end` event when it finishes.

    The row is read every EVENT_POLL_S: epochs shorter than that may share one event (the newest progress wins).
    """
    job, seen, seq = first, None, 0
    quiet = 0.0
    while True:
        state = (job.status, json.dumps(job.progress, sort_keys=True), job.attempts)
        if state != seen:
            seen, seq, quiet = state, seq + 1, 0.0
            if job.status in jobs.FINISHED:
                yield _sse("end", seq, job)
                return
            yield _sse("progress", seq, job)
        elif quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keep-alive\n\n"  # a comment line keeps proxies from closing an idle stream
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_POLL_S)
        quiet += EVENT_POLL_S
        try:
            job = await run_in_threadpool(jobs.get_job, engine, job.id)
        except NotFound:
            return  # the job's model version was deleted, and the job with it


class _SlotStream(StreamingResponse):
    """A stream that gives its caller's slot back however it ends: finished, the client gone, or cancelled."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None], **kw: Any):
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-sent events: `progress` (data: the job) on every change, "
                                            "then one `end` (data: the finished job)"},
                       **responses(401, 403, 404, 422, 429, 503)},
            summary="Follow a job's progress (server-sent events)")
async def job_events(engine: EngineDep, request: Request, job_id: JobId, caller: Reader) -> StreamingResponse:
    first = await run_in_threadpool(jobs.get_job, engine, job_id, caller.sees_model)
    slots = request.app.state.stream_slots
    if not slots.acquire(caller.identity):
        raise TooManyRequests(f"this API key has {slots.limit} event streams open in this server, its limit: "
                              "close one first", code="too_many_streams")
    try:
        return _SlotStream(_follow(engine, request, first), lambda: slots.release(caller.identity),
                           media_type="text/event-stream",
                           headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    except BaseException:
        slots.release(caller.identity)
        raise


@router.post("/{job_id}/cancel", status_code=202,
             responses=responses(401, 403, 404, 409, 422, 503, 507),
             summary="Cancel a job: a queued one at once, a running one within an epoch")
def cancel_job(engine: EngineDep, job_id: JobId, caller: Writer) -> JobPublic:
    jobs.get_job(engine, job_id, caller.sees_model)  # 404 for a job of a version the caller may not see
    return job_public(jobs.request_cancel(engine, job_id))

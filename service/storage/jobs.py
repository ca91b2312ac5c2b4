"""Jobs: the `jobs` table is the truth about every training job; the queue only delivers job ids.

    queued ──claim──► running ──► succeeded | failed | cancelled
      ▲                  │
      └──── sweep ───────┘  (heartbeat stale: the worker died; past job_max_attempts the job fails instead)

Every transition is a conditional UPDATE, so a doubled message, two sweepers or a worker presumed dead that wakes
up again change nothing they no longer own: claim needs `status = 'queued'`; progress, heartbeat and finish need
`status = 'running' AND worker = <me>`. The version row moves with its job in the same transaction.
Times are µs since the epoch.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, Update, func, select, text, update
from sqlalchemy.exc import IntegrityError

from service.config import Settings
from service.errors import Conflict, NotFound, TooManyRequests
from service.storage import registry
from service.storage.registry import VersionStatus
from service.storage.tables import jobs, models
from service.times.timefmt import now_us


class JobStatus(StrEnum):
    """A job's state (the diagram above), stored as the value in `jobs.status` and answered as is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# PostgreSQL advisory lock class under which one key's job creations queue (the key's id, or 0, is the other half).
_OWNER_LOCK = 0x6A6F_6273  # "jobs"
_VERSION_STATUS = {JobStatus.QUEUED: VersionStatus.QUEUED, JobStatus.SUCCEEDED: VersionStatus.READY,
                   JobStatus.FAILED: VersionStatus.FAILED, JobStatus.CANCELLED: VersionStatus.CANCELLED}


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    model_id: int | None
    model_name: str | None
    model_version: int | None
    model_series: list[str] | None
    status: str
    progress: dict[str, Any] | None
    attempts: int
    worker: str | None
    heartbeat_at: int | None
    cancel_requested: bool
    error: str | None
    created_at: int
    enqueued_at: int | None
    started_at: int | None
    finished_at: int | None


def _select() -> Select[*tuple[Any, ...]]:
    return select(jobs, models.c.name.label("model_name"), models.c.version.label("model_version"),
                  models.c.series.label("model_series")).select_from(
        jobs.outerjoin(models, jobs.c.model_id == models.c.id))


def _job(row: Row[*tuple[Any, ...]]) -> Job:
    m = row._mapping
    return Job(id=m["id"], kind=m["kind"], model_id=m["model_id"], model_name=m["model_name"],
               model_version=m["model_version"], model_series=m["model_series"], status=m["status"],
               progress=m["progress"], attempts=m["attempts"], worker=m["worker"], heartbeat_at=m["heartbeat_at"],
               cancel_requested=bool(m["cancel_requested"]), error=m["error"], created_at=m["created_at"],
               enqueued_at=m["enqueued_at"], started_at=m["started_at"], finished_at=m["finished_at"])


def _seen(job: Job, sees: registry.Sees) -> bool:
    return sees(job.model_name or "", job.model_series or [])


def get_job(engine: Engine, job_id: str, sees: registry.Sees = registry.everyone) -> Job:
    """The job `job_id`; NotFound when there is none, or when the caller may not see its model version."""
    with engine.connect() as conn:
        row = conn.execute(_select().where(jobs.c.id == job_id)).first()
    if row is None or not _seen(_job(row), sees):
        raise NotFound(f"job {job_id!r} does not exist", code="no_job")
    return _job(row)


def _by_idempotency_key(engine: Engine, tenant: str, key: str) -> Job | None:
    with engine.connect() as conn:
        row = conn.execute(_select().where(jobs.c.tenant == tenant, jobs.c.idempotency_key == key)).first()
    return None if row is None else _job(row)


def _count_active(conn: Connection, owner: int | None) -> int:
    """Jobs of `owner` (an api_keys id; None: jobs asked for without a key) queued or running, with the owner's job
    creations serialised until the caller's transaction ends: on SQLite by its write lock, on PostgreSQL by an
    advisory lock, so two requests at once cannot both pass the count."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _OWNER_LOCK, "b": owner or 0})
    same = jobs.c.api_key_id.is_(None) if owner is None else jobs.c.api_key_id == owner
    return conn.execute(select(func.count()).select_from(jobs).where(same, jobs.c.status.in_(ACTIVE))).scalar_one()


def create_training(engine: Engine, *, job_id: str, name: str, config: dict[str, Any], channels: list[str],
                    series: list[str], idempotency_key: str | None = None, request_hash: str | None = None,
                    owner: int | None = None, tenant: str = "", max_active: int | None = None
                    ) -> tuple[Job, bool]:
    """Insert version max+1 of `name` and its queued job in one transaction. Returns (job, created).

    With an idempotency key already used by the same request, the first job comes back (created False); used by a
    different request, Conflict; idempotency keys are unique within `tenant` (the key's prefix, '' for none).
    With `max_active`, TooManyRequests (too_many_jobs) when `owner` (an api_keys id)
    has that many jobs queued or running already: an idempotent retry of an accepted request is answered first.
    The caller enqueues the job id after this returns (after the commit).
    """
    for _ in range(20):
        if idempotency_key is not None:
            first = _by_idempotency_key(engine, tenant, idempotency_key)
            if first is not None:
                if _hash_of(engine, first.id) != request_hash:
                    raise Conflict("this Idempotency-Key was already used with a different request",
                                   code="idempotency_key_reused")
                return first, False
        try:
            with engine.begin() as conn:
                if max_active is not None and (active := _count_active(conn, owner)) >= max_active:
                    raise TooManyRequests(f"this API key has {active} training jobs queued or running, its limit: "
                                          "wait for one to finish, or cancel one (POST /v1/jobs/{id}/cancel)",
                                          code="too_many_jobs")
                model_id, _ = registry.insert_version(conn, name=name, config=config, channels=channels,
                                                      series=series)
                now = now_us()
                conn.execute(jobs.insert().values(
                    id=job_id, kind="train", model_id=model_id, status=JobStatus.QUEUED, attempts=0,
                    cancel_requested=False, idempotency_key=idempotency_key, request_hash=request_hash,
                    api_key_id=owner, tenant=tenant, created_at=now, enqueued_at=now))
        except IntegrityError:
            continue  # another writer took this version number or this idempotency key: look again
        return get_job(engine, job_id), True
    raise Conflict(f"could not allocate a version of model {name!r}: too many concurrent writers")


def _hash_of(engine: Engine, job_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(jobs.c.request_hash).where(jobs.c.id == job_id)).scalar()


def list_jobs(engine: Engine, *, status: str | None, limit: int, after: tuple[int, str] | None = None,
              name_prefix: str | None = None, sees: registry.Sees = registry.everyone) -> list[Job]:
    """Up to `limit` jobs newest first (created_at, then id, descending), strictly after the job
    `after` = (created_at µs, id) in that order. With `name_prefix` (a tenant's), only jobs of model names starting
    with it whose versions the caller sees, read batch by batch until `limit` are found."""
    found: list[Job] = []
    while True:
        query = _select().order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(jobs.c.status == status)
        if name_prefix is not None:
            query = query.where(func.substr(models.c.name, 1, len(name_prefix)) == name_prefix)
        if after is not None:
            created, job_id = after
            query = query.where((jobs.c.created_at < created)
                                | ((jobs.c.created_at == created) & (jobs.c.id < job_id)))
        with engine.connect() as conn:
            batch = [_job(r) for r in conn.execute(query).all()]
        found += [j for j in batch if name_prefix is None or _seen(j, sees)]
        if len(batch) < limit or len(found) >= limit:
            return found[:limit]
        after = (batch[-1].created_at, batch[-1].id)


def claim(engine: Engine, job_id: str, worker: str) -> Job | None:
    """Take a queued job for `worker` (attempts + 1) and mark its version `training`; None if not claimable."""
    now = now_us()
    with engine.begin() as conn:
        taken = conn.execute(update(jobs).where(
            jobs.c.id == job_id, jobs.c.status == JobStatus.QUEUED, jobs.c.cancel_requested.is_(False)).values(
            status=JobStatus.RUNNING, worker=worker, attempts=jobs.c.attempts + 1, heartbeat_at=now, started_at=now,
            finished_at=None, error=None, progress=None)).rowcount
        if taken != 1:
            return None
        model_id = conn.execute(select(jobs.c.model_id).where(jobs.c.id == job_id)).scalar()
        if model_id is not None:
            registry.set_status(conn, model_id, VersionStatus.TRAINING)
    return get_job(engine, job_id)


def _owned(job_id: str, worker: str) -> Update:
    return update(jobs).where(jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING, jobs.c.worker == worker)


def _cancel_requested(conn: Connection, job_id: str) -> bool:
    return bool(conn.execute(select(jobs.c.cancel_requested).where(jobs.c.id == job_id)).scalar())


def heartbeat(engine: Engine, job_id: str, worker: str, progress: dict[str, Any] | None = None) -> bool | None:
    """Refresh the heartbeat (and progress, when given) of a job `worker` owns.

    Returns whether a cancel was requested, or None when the job is no longer this worker's (deleted, or taken
    back by the sweeper): the worker must stop and write nothing more.
    """
    values: dict[str, Any] = {"heartbeat_at": now_us()}
    if progress is not None:
        values["progress"] = progress
    with engine.begin() as conn:
        if conn.execute(_owned(job_id, worker).values(**values)).rowcount != 1:
            return None
        return _cancel_requested(conn, job_id)


def finish(engine: Engine, job_id: str, worker: str, status: JobStatus, *, error: str | None = None) -> bool:
    """End a job this worker owns as failed or cancelled, with its version; False if it was not ours any more."""
    if status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise ValueError(f"finish ends a job as 'failed' or 'cancelled', not {status!r}: success is succeed()")
    with engine.begin() as conn:
        if conn.execute(_owned(job_id, worker).values(status=status, error=error, finished_at=now_us())).rowcount != 1:
            return False
        model_id = conn.execute(select(jobs.c.model_id).where(jobs.c.id == job_id)).scalar()
        if model_id is not None:
            registry.set_status(conn, model_id, _VERSION_STATUS[status], error=error)
    return True


def succeed(engine: Engine, job_id: str, worker: str, model_id: int, *, artifact: bytes, stats: dict[str, Any],
            metrics: dict[str, Any], progress: dict[str, Any] | None) -> bool:
    """Publish the version (artifact + `ready`) and end the job `succeeded`, in ONE transaction.

    If the job is no longer this worker's, nothing is written (the transaction rolls back) and False comes back:
    a worker presumed dead never publishes beside the one that took its job over.
    """
    values: dict[str, Any] = {"status": JobStatus.SUCCEEDED, "error": None, "finished_at": now_us()}
    if progress is not None:
        values["progress"] = progress
    try:
        with engine.begin() as conn:
            if conn.execute(_owned(job_id, worker).values(**values)).rowcount != 1:
                raise _NotOurs
            if not registry.publish(conn, model_id, artifact=artifact, stats=stats, metrics=metrics):
                raise _NotOurs
    except _NotOurs:
        return False
    return True


class _NotOurs(Exception):
    """Rolls back a publishing transaction whose job or version is no longer this worker's."""


def release(engine: Engine, job_id: str, worker: str) -> bool:
    """Hand a job back to the queue (this worker is shutting down); the caller enqueues it again."""
    with engine.begin() as conn:
        back = conn.execute(_owned(job_id, worker).values(
            status=JobStatus.QUEUED, worker=None, enqueued_at=now_us(), attempts=jobs.c.attempts - 1)).rowcount
        if back != 1:
            return False
        model_id = conn.execute(select(jobs.c.model_id).where(jobs.c.id == job_id)).scalar()
        if model_id is not None:
            registry.set_status(conn, model_id, VersionStatus.QUEUED)
    return True


def request_cancel(engine: Engine, job_id: str) -> Job:
    """Cancel a queued job at once, or ask the worker of a running one to stop; Conflict if it has finished."""
    with engine.begin() as conn:
        row = conn.execute(select(jobs.c.status, jobs.c.model_id).where(jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"job {job_id!r} does not exist", code="no_job")
        if row.status in FINISHED:
            raise Conflict(f"job {job_id} already {row.status}: there is nothing to cancel", code="job_finished")
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(cancel_requested=True))
        # A queued job has no worker to notice the flag; end it here. The condition keeps a worker that claimed
        # it meanwhile in charge (it sees the flag within one epoch).
        if conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == JobStatus.QUEUED).values(
                status=JobStatus.CANCELLED, finished_at=now_us())).rowcount == 1 and row.model_id is not None:
            registry.set_status(conn, row.model_id, VersionStatus.CANCELLED)
    return get_job(engine, job_id)


def sweep(engine: Engine, settings: Settings, pending: set[str]) -> list[str]:
    """Recover jobs a lost message or a dead worker left behind; return the ids to enqueue again.

    - `running` with a heartbeat older than stale_after_seconds: its worker died. Back to `queued` (or `failed`
      with the reason once job_max_attempts claims are spent; `cancelled` if a cancel was pending).
    - `queued` for longer than requeue_after_seconds and not waiting in the queue (`pending` holds the job ids of
      the queue's messages): its message was lost between commit and enqueue, or taken by a consumer that died
      before claiming it.
    """
    now = now_us()
    stale_before = now - int(settings.stale_after_seconds * 1e6)
    requeue_before = now - int(settings.requeue_after_seconds * 1e6)
    again: list[str] = []
    with engine.begin() as conn:
        stale = conn.execute(select(jobs.c.id, jobs.c.attempts, jobs.c.worker, jobs.c.heartbeat_at,
                                    jobs.c.cancel_requested, jobs.c.model_id)
                             .where(jobs.c.status == JobStatus.RUNNING, jobs.c.heartbeat_at < stale_before)).all()
        status: JobStatus
        values: dict[str, Any]
        for job in stale:
            still = update(jobs).where(jobs.c.id == job.id, jobs.c.status == JobStatus.RUNNING,
                                       jobs.c.heartbeat_at == job.heartbeat_at)
            lost = f"worker {job.worker} stopped sending heartbeats (attempt {job.attempts})"
            if job.cancel_requested:
                status, values = JobStatus.CANCELLED, {"status": JobStatus.CANCELLED, "finished_at": now}
            elif job.attempts >= settings.job_max_attempts:
                error = f"{lost}; gave up after {job.attempts} attempts (job_max_attempts)"
                status, values = JobStatus.FAILED, {"status": JobStatus.FAILED, "error": error, "finished_at": now}
            else:
                status = JobStatus.QUEUED
                values = {"status": status, "worker": None, "enqueued_at": now, "error": lost}
            if conn.execute(still.values(**values)).rowcount != 1 or job.model_id is None:
                continue
            registry.set_status(conn, job.model_id, _VERSION_STATUS[status],
                                error=values.get("error") if status == JobStatus.FAILED else None)
            if status == JobStatus.QUEUED:
                again.append(job.id)
        waiting = conn.execute(select(jobs.c.id, jobs.c.enqueued_at).where(
            jobs.c.status == JobStatus.QUEUED, jobs.c.enqueued_at < requeue_before)).all()
        for queued in waiting:
            if queued.id in pending:
                continue
            if conn.execute(update(jobs).where(jobs.c.id == queued.id, jobs.c.status == JobStatus.QUEUED,
                                               jobs.c.enqueued_at == queued.enqueued_at)
                            .values(enqueued_at=now)).rowcount == 1:
                again.append(queued.id)
    return again

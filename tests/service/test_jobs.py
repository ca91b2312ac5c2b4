"""The jobs table's state machine, on SQLite and PostgreSQL: claims, ownership, cancel, publish, sweep."""

import hashlib
import uuid

import pytest
from sqlalchemy import Engine, select, update

from service.config import Settings
from service.errors import Conflict, NotFound
from service.storage import jobs, registry
from service.storage.tables import jobs as jobs_table
from service.storage.tables import models as models_table
from service.times.timefmt import now_us


def _new(engine: Engine, name: str = "rooms", key: str | None = None, body_hash: str = "h") -> jobs.Job:
    job, created = jobs.create_training(engine, job_id=str(uuid.uuid4()), name=name, config={"epochs": 1},
                                        channels=["a"], series=["s1"], idempotency_key=key, request_hash=body_hash)
    assert created
    return job


def _age(engine: Engine, job_id: str, **seconds_ago: float) -> None:
    """Move the job's heartbeat_at / enqueued_at into the past."""
    values = {column: now_us() - int(s * 1e6) for column, s in seconds_ago.items()}
    with engine.begin() as conn:
        conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))


def test_versions_count_up_per_name(engine: Engine) -> None:
    first, second, other = _new(engine), _new(engine), _new(engine, name="other")
    assert (first.model_name, first.model_version) == ("rooms", 1)
    assert (second.model_name, second.model_version) == ("rooms", 2)
    assert other.model_version == 1
    assert first.status == "queued" and first.attempts == 0 and first.progress is None
    assert [v.status for v in registry.list_versions(engine, "rooms")] == ["queued", "queued"]


def test_idempotency_key_returns_the_first_job_and_refuses_another_body(engine: Engine) -> None:
    first = _new(engine, key="k-1", body_hash="same")
    again, created = jobs.create_training(engine, job_id=str(uuid.uuid4()), name="rooms", config={},
                                          channels=["a"], series=["s1"], idempotency_key="k-1", request_hash="same")
    assert not created and again.id == first.id
    with pytest.raises(Conflict) as info:
        jobs.create_training(engine, job_id=str(uuid.uuid4()), name="rooms", config={}, channels=["a"],
                             series=["s1"], idempotency_key="k-1", request_hash="different")
    assert info.value.code == "idempotency_key_reused"
    assert len(registry.list_versions(engine, "rooms")) == 1


def test_a_job_is_claimed_once(engine: Engine) -> None:
    job = _new(engine)
    claimed = jobs.claim(engine, job.id, "w1")
    assert claimed is not None and claimed.status == "running" and claimed.attempts == 1
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    assert jobs.claim(engine, job.id, "w2") is None  # a doubled message
    assert registry.get_version(engine, "rooms", 1).status == "training"


def test_only_the_owner_writes(engine: Engine) -> None:
    job = _new(engine)
    jobs.claim(engine, job.id, "w1")
    assert jobs.heartbeat(engine, job.id, "w2") is None
    assert jobs.finish(engine, job.id, "w2", "failed", error="x") is False
    assert not jobs.succeed(engine, job.id, "w2", job.model_id, artifact=b"x", stats={}, metrics={}, progress=None)
    assert jobs.heartbeat(engine, job.id, "w1", {"epoch": 1}) is False
    assert jobs.get_job(engine, job.id).progress == {"epoch": 1}
    with engine.connect() as conn:
        assert conn.execute(select(models_table.c.artifact)).scalar() is None


def test_publish_writes_artifact_and_ready_together(engine: Engine) -> None:
    job = _new(engine)
    jobs.claim(engine, job.id, "w1")
    assert jobs.succeed(engine, job.id, "w1", job.model_id, artifact=b"weights", stats={"horizon_s": 1.0},
                        metrics={"val_mse": 0.1}, progress={"epoch": 1})
    version = registry.get_version(engine, "rooms", 1)
    assert version.status == "ready" and version.stats == {"horizon_s": 1.0} and version.trained_at is not None
    assert version.artifact_sha256 == hashlib.sha256(b"weights").hexdigest()
    assert registry.read_artifact(engine, "rooms", 1) == b"weights"
    finished = jobs.get_job(engine, job.id)
    assert finished.status == "succeeded" and finished.finished_at is not None


def test_publish_into_a_deleted_version_writes_nothing(engine: Engine) -> None:
    job = _new(engine)
    jobs.claim(engine, job.id, "w1")
    registry.delete_version(engine, "rooms", 1)
    assert not jobs.succeed(engine, job.id, "w1", job.model_id, artifact=b"w", stats={}, metrics={}, progress=None)
    with pytest.raises(NotFound):
        jobs.get_job(engine, job.id)


def test_failure_leaves_the_ready_version_serving(engine: Engine) -> None:
    good, bad = _new(engine), _new(engine)
    jobs.claim(engine, good.id, "w")
    jobs.succeed(engine, good.id, "w", good.model_id, artifact=b"w1", stats={}, metrics={}, progress=None)
    jobs.claim(engine, bad.id, "w")
    assert jobs.finish(engine, bad.id, "w", "failed", error="training failed: loss became nan")
    assert registry.get_version(engine, "rooms", 2).status == "failed"
    assert registry.get_version(engine, "rooms", 2).error == "training failed: loss became nan"
    assert registry.read_artifact(engine, "rooms", 1) == b"w1"
    with pytest.raises(Conflict):
        registry.read_artifact(engine, "rooms", 2)


def test_cancel_queued_running_and_finished(engine: Engine) -> None:
    queued = _new(engine)
    assert jobs.request_cancel(engine, queued.id).status == "cancelled"
    assert registry.get_version(engine, "rooms", 1).status == "cancelled"
    assert jobs.claim(engine, queued.id, "w") is None

    running = _new(engine)
    jobs.claim(engine, running.id, "w")
    after = jobs.request_cancel(engine, running.id)
    assert after.status == "running" and after.cancel_requested
    assert jobs.heartbeat(engine, running.id, "w") is True  # the worker learns of it
    jobs.finish(engine, running.id, "w", "cancelled")
    with pytest.raises(Conflict) as info:
        jobs.request_cancel(engine, running.id)
    assert info.value.code == "job_finished"
    with pytest.raises(NotFound):
        jobs.request_cancel(engine, str(uuid.uuid4()))


def test_sweep_requeues_a_dead_workers_job_then_gives_up(engine: Engine, settings: Settings) -> None:
    s = settings.model_copy(update={"stale_after_seconds": 5, "job_max_attempts": 2})
    job = _new(engine)
    jobs.claim(engine, job.id, "dead")
    assert jobs.sweep(engine, s, pending=set()) == []  # heartbeat is fresh
    _age(engine, job.id, heartbeat_at=10)
    assert jobs.sweep(engine, s, pending=set()) == [job.id]
    back = jobs.get_job(engine, job.id)
    assert back.status == "queued" and back.attempts == 1 and "dead" in back.error
    assert registry.get_version(engine, "rooms", 1).status == "queued"
    assert jobs.heartbeat(engine, job.id, "dead") is None  # the presumed-dead worker may not write any more

    jobs.claim(engine, job.id, "dead-again")
    _age(engine, job.id, heartbeat_at=10)
    assert jobs.sweep(engine, s, pending=set()) == []
    failed = jobs.get_job(engine, job.id)
    assert failed.status == "failed" and "gave up after 2 attempts" in failed.error
    assert registry.get_version(engine, "rooms", 1).status == "failed"


def test_sweep_resends_a_lost_message_but_not_a_waiting_one(engine: Engine, settings: Settings) -> None:
    s = settings.model_copy(update={"requeue_after_seconds": 5})
    lost, waiting, fresh = _new(engine), _new(engine), _new(engine)
    _age(engine, lost.id, enqueued_at=10)
    _age(engine, waiting.id, enqueued_at=10)
    assert jobs.sweep(engine, s, pending={waiting.id}) == [lost.id]
    assert jobs.sweep(engine, s, pending={waiting.id}) == []  # resent just now: not again at once
    assert {jobs.get_job(engine, j.id).status for j in (lost, waiting, fresh)} == {"queued"}


def test_stale_job_with_a_pending_cancel_ends_cancelled(engine: Engine, settings: Settings) -> None:
    s = settings.model_copy(update={"stale_after_seconds": 5})
    job = _new(engine)
    jobs.claim(engine, job.id, "w")
    jobs.request_cancel(engine, job.id)
    _age(engine, job.id, heartbeat_at=10)
    assert jobs.sweep(engine, s, pending=set()) == []
    assert jobs.get_job(engine, job.id).status == "cancelled"


def test_release_hands_the_job_back_without_spending_an_attempt(engine: Engine) -> None:
    job = _new(engine)
    jobs.claim(engine, job.id, "w")
    assert jobs.release(engine, job.id, "w")
    back = jobs.get_job(engine, job.id)
    assert back.status == "queued" and back.attempts == 0 and back.worker is None
    assert jobs.claim(engine, job.id, "w2").attempts == 1


def test_list_newest_first_after_a_job_and_status(engine: Engine) -> None:
    made = [_new(engine) for _ in range(5)]
    jobs.claim(engine, made[1].id, "w")
    page = jobs.list_jobs(engine, status=None, limit=2)
    seen = [j.id for j in page]
    while page:
        page = jobs.list_jobs(engine, status=None, limit=2, after=(page[-1].created_at, page[-1].id))
        seen += [j.id for j in page]
    assert seen == [j.id for j in sorted(made, key=lambda j: (j.created_at, j.id), reverse=True)]
    running = jobs.list_jobs(engine, status="running", limit=10)
    assert [j.id for j in running] == [made[1].id]


def test_a_heartbeat_keeps_a_running_job_from_the_sweeper(engine: Engine, settings: Settings) -> None:
    s = settings.model_copy(update={"stale_after_seconds": 5})
    job = _new(engine)
    jobs.claim(engine, job.id, "alive")
    _age(engine, job.id, heartbeat_at=10)  # the last beat was long ago: stale as it stands
    assert jobs.heartbeat(engine, job.id, "alive", {"epoch": 1}) is False
    assert jobs.sweep(engine, s, pending=set()) == []
    kept = jobs.get_job(engine, job.id)
    assert (kept.status, kept.worker, kept.attempts, kept.error) == ("running", "alive", 1, None)
    assert jobs.heartbeat(engine, job.id, "alive") is False  # still its own

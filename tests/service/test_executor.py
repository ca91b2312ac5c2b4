"""The queue: JSON messages (no pickle), the three stores, pending ids, the sweeper's resend."""

import uuid
from collections.abc import Iterator

import pytest
import redis
from huey.registry import Message
from sqlalchemy import Engine, update

from service.config import Settings
from service.storage import jobs
from service.storage.tables import jobs as jobs_table
from service.training import executor

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_messages_are_json() -> None:
    serializer = executor.JsonSerializer()
    message = Message("task-id", "service.training.executor.run_job", None, 0, 0, None, ("job-1",), {})
    data = serializer.serialize(message)
    assert data.startswith(b"{") and b'"args":["job-1"]' in data
    assert serializer.deserialize(data) == message
    with pytest.raises(TypeError, match="task messages only"):
        serializer.serialize({"some": "result"})
    with pytest.raises(TypeError, match="does not carry eta"):
        serializer.serialize(message._replace(eta=1.5))


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["sqlite-file", "redis", "postgresql"])
def queue_settings(request: pytest.FixtureRequest, tmp_path) -> Iterator[Settings]:
    """Settings naming a queue of each kind, with a unique name, flushed afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite-file":
        url = None
    elif request.param == "redis":
        if not _redis_available():
            pytest.skip("Redis at 127.0.0.1:6379 is unreachable")
        url = REDIS_URL
    else:
        url = request.getfixturevalue("postgres_url")
    settings = Settings(data_dir=tmp_path / "data", queue_url=url, queue_name=name)
    yield settings
    executor.get_queue(settings).huey.flush()
    executor.close_queue(settings)


def test_each_store_delivers_job_ids(queue_settings: Settings) -> None:
    queue = executor.get_queue(queue_settings)
    assert executor.submit(queue_settings, "job-a") and executor.submit(queue_settings, "job-b")
    assert executor.pending_job_ids(queue.huey) == {"job-a", "job-b"}
    task = queue.huey.dequeue()
    assert task.args == ("job-a",)
    assert executor.pending_job_ids(queue.huey) == {"job-b"}


def test_unknown_queue_url_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="must start with redis:// or postgresql://"):
        executor.make_queue(Settings(data_dir=tmp_path, queue_url="amqp://localhost"))


def test_a_failed_send_is_left_to_the_sweeper(tmp_path) -> None:
    down = Settings(data_dir=tmp_path, queue_url="redis://127.0.0.1:1/0", queue_name=f"t-{uuid.uuid4().hex[:8]}")
    assert executor.submit(down, "job-x") is False


def test_sweeper_resends_a_lost_message(engine: Engine, settings: Settings) -> None:
    s = settings.model_copy(update={"requeue_after_seconds": 1, "queue_name": f"t-{uuid.uuid4().hex[:8]}"})
    job, _ = jobs.create_training(engine, job_id=str(uuid.uuid4()), name="m", config={}, channels=["a"],
                                  series=["s"])
    with engine.begin() as conn:  # committed, but the enqueue never happened, 10 s ago
        conn.execute(update(jobs_table).where(jobs_table.c.id == job.id).values(enqueued_at=job.enqueued_at - 10**7))
    queue = executor.get_queue(s)
    sweeper = executor.Sweeper(s, engine, queue.huey, stop=None)  # type: ignore[arg-type]
    assert sweeper.sweep_once() == [job.id]
    assert executor.pending_job_ids(queue.huey) == {job.id}
    with engine.begin() as conn:
        conn.execute(update(jobs_table).where(jobs_table.c.id == job.id).values(enqueued_at=job.enqueued_at - 10**7))
    assert sweeper.sweep_once() == []  # its message is waiting in the queue now: no duplicate

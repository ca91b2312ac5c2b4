"""Per-key quotas: the request rate (in this process, and in Redis shared by several apps), training jobs queued
or running, open event streams. Each refusal is a 429 in the error shape."""

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Engine

from service.api.quotas import MovingWindow, RateLimiter
from service.app import create_app
from service.config import Settings
from service.errors import TooManyRequests
from service.storage import jobs, keys
from tests.serving import uvicorn_thread
from tests.training_data import TINY, add_series

REDIS_URL = "redis://127.0.0.1:6379/0"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def namespace() -> Iterator[str]:
    """A Redis key namespace of this test's own; its keys (and only they) are deleted afterwards."""
    name = f"lc-test-{uuid.uuid4().hex[:12]}"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield name
    conn = redis.Redis.from_url(REDIS_URL)
    for key in conn.scan_iter(f"{name}:*"):
        conn.delete(key)
    conn.close()


def _limited(r: httpx.Response, requests: int, window: int) -> int:
    assert r.status_code == 429, r.text
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= window
    assert r.json()["error"] == {"code": "rate_limited", "details": [],
                                 "message": f"this API key sent more than {requests} requests in {window} s: "
                                            f"retry after {wait} s"}
    return wait


# --- request rate ---------------------------------------------------------------------------------------------------

def test_rate_limit_in_process_per_key(settings: Settings, engine: Engine) -> None:
    one, two = keys.create_key(engine, "one", ["read"]), keys.create_key(engine, "two", ["read"])
    with TestClient(create_app(settings.model_copy(update={"rate_limit_requests": 3,
                                                           "rate_limit_window_seconds": 60}))) as c:
        assert c.app.state.rate_limiter.backend == "memory"
        assert [c.get("/v1/series", headers=_auth(one)).status_code for _ in range(2)] == [200, 200]
        assert c.post("/v1/series", json={}, headers=_auth(one)).status_code == 403  # refused ones count too
        _limited(c.get("/v1/series", headers=_auth(one)), 3, 60)
        _limited(c.get("/v1/models", headers=_auth(one)), 3, 60)  # every route, one count per key
        assert c.get("/v1/series", headers=_auth(two)).status_code == 200  # another key has its own
        assert c.get("/healthz").status_code == 200  # routes without a key are not counted


def test_rate_limit_without_auth_counts_all_requests_together(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"auth": "disabled", "rate_limit_requests": 2}))) as c:
        assert [c.get("/v1/series").status_code for _ in range(2)] == [200, 200]
        _limited(c.get("/v1/series"), 2, 10)


def test_rate_limit_zero_is_no_limit(settings: Settings, admin_key: str) -> None:
    with TestClient(create_app(settings.model_copy(update={"rate_limit_requests": 0})),
                    headers=_auth(admin_key)) as c:
        assert {c.get("/v1/series").status_code for _ in range(30)} == {200}


def test_rate_limit_is_shared_through_redis(settings: Settings, admin_key: str, namespace: str) -> None:
    """Two apps (two API replicas) on one Redis share each key's count."""
    shared = settings.model_copy(update={"queue_url": REDIS_URL, "queue_name": namespace, "rate_limit_requests": 3,
                                         "rate_limit_window_seconds": 30})
    with TestClient(create_app(shared), headers=_auth(admin_key)) as a, \
            TestClient(create_app(shared), headers=_auth(admin_key)) as b:
        assert a.app.state.rate_limiter.backend == "redis"
        assert [a.get("/v1/series").status_code, b.get("/v1/series").status_code,
                a.get("/v1/series").status_code] == [200, 200, 200]
        _limited(b.get("/v1/series"), 3, 30)
        _limited(a.get("/v1/series"), 3, 30)
    conn = redis.Redis.from_url(REDIS_URL)
    assert list(conn.scan_iter(f"{namespace}:rate*")), "the counts are in Redis, under this deployment's queue name"
    conn.close()


def test_rate_limiter_over_redis_frees_a_slot_when_the_oldest_request_leaves_the_window(namespace: str) -> None:
    a = RateLimiter(2, 2, redis=REDIS_URL, namespace=namespace)
    b = RateLimiter(2, 2, redis=REDIS_URL, namespace=namespace)
    other = RateLimiter(2, 2, redis=REDIS_URL, namespace=namespace + "-other")
    assert a.hit("k") is None and b.hit("k") is None
    wait = a.hit("k")
    assert wait in (1, 2) and b.hit("k") in (1, 2)
    assert other.hit("k") is None  # another deployment's namespace counts apart
    time.sleep(wait + 0.1)
    assert b.hit("k") is None


def test_rate_limiter_in_memory(namespace: str) -> None:
    limiter = RateLimiter(2, 1)
    assert limiter.backend == "memory"
    assert [limiter.hit("k"), limiter.hit("k"), limiter.hit("other")] == [None, None, None]
    assert limiter.hit("k") == 1
    time.sleep(1.1)
    assert limiter.hit("k") is None


def test_redis_down_falls_back_to_counting_in_process(settings: Settings, admin_key: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    down = settings.model_copy(update={"queue_url": "redis://127.0.0.1:1/0", "rate_limit_requests": 2})
    with TestClient(create_app(down), headers=_auth(admin_key)) as c:
        assert [c.get("/v1/series").status_code for _ in range(2)] == [200, 200]
        _limited(c.get("/v1/series"), 2, 10)
    assert any("counting in this process" in r.getMessage() for r in caplog.records)


# --- training jobs ----------------------------------------------------------------------------------------------------

def _train(c: TestClient, key: str, name: str = "rooms", **headers: str) -> httpx.Response:
    return c.post("/v1/models", json={"name": name, "series": ["room-1"], "config": TINY},
                  headers={**_auth(key), **headers})


def test_active_jobs_per_key(settings: Settings, engine: Engine, admin_key: str) -> None:
    add_series(engine, "room-1")
    other = keys.create_key(engine, "other", ["write"])
    with TestClient(create_app(settings.model_copy(update={"max_active_jobs_per_key": 2}))) as c:
        first = _train(c, admin_key, **{"Idempotency-Key": "one"})
        assert first.status_code == 202
        assert _train(c, admin_key).status_code == 202
        r = _train(c, admin_key)
        assert r.status_code == 429 and "retry-after" not in r.headers
        assert r.json()["error"]["code"] == "too_many_jobs"
        assert "2 training jobs queued or running" in r.json()["error"]["message"]
        again = _train(c, admin_key, **{"Idempotency-Key": "one"})  # a retry of an accepted request still answers
        assert again.status_code == 202 and again.json()["job"]["id"] == first.json()["job"]["id"]
        assert _train(c, other).status_code == 202  # another key has its own count
        job_id = first.json()["job"]["id"]
        jobs.claim(engine, job_id, "w")  # running counts as well as queued
        assert _train(c, admin_key).status_code == 429
        assert c.post(f"/v1/jobs/{job_id}/cancel", headers=_auth(admin_key)).status_code == 202
        assert jobs.finish(engine, job_id, "w", "cancelled")
        assert _train(c, admin_key).status_code == 202
        assert len([j for j in jobs.list_jobs(engine, status=None, limit=100)]) == 4  # nothing stored when refused


def test_concurrent_requests_cannot_pass_the_job_limit_together(engine: Engine, admin_key: str) -> None:
    owner = keys.authenticate(engine, admin_key).key_id
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def post(i: int) -> None:
        start.wait()
        try:
            jobs.create_training(engine, job_id=str(uuid.uuid4()), name=f"m{i}", config={}, channels=["a"],
                                 series=["s"], owner=owner, max_active=2)
            outcomes.append("created")
        except TooManyRequests:
            outcomes.append("refused")

    threads = [threading.Thread(target=post, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] * 2 + ["refused"] * 4


# --- event streams ----------------------------------------------------------------------------------------------------

def test_event_streams_per_key(settings: Settings, engine: Engine, admin_key: str) -> None:
    add_series(engine, "room-1")
    reader = keys.create_key(engine, "reader", ["read"])
    app = create_app(settings.model_copy(update={"max_event_streams_per_key": 2}))
    with TestClient(app, headers=_auth(admin_key)) as c:
        job_id = _train(c, admin_key).json()["job"]["id"]  # stays queued: no worker here, so its stream stays open
    with uvicorn_thread(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        url = f"/v1/jobs/{job_id}/events"
        opened = [http.stream("GET", url, headers=_auth(admin_key)) for _ in range(2)]
        responses = [s.__enter__() for s in opened]
        assert [r.status_code for r in responses] == [200, 200]
        r = http.get(url, headers=_auth(admin_key))
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_streams"
        assert "2 event streams open" in r.json()["error"]["message"]
        with http.stream("GET", url, headers=_auth(reader)) as r:  # another key has its own
            assert r.status_code == 200
        opened[0].__exit__(None, None, None)  # the client goes away: its slot comes back
        deadline = time.monotonic() + 10
        while app.state.stream_slots.open(keys.authenticate(engine, admin_key).identity) > 1:
            assert time.monotonic() < deadline, "the closed stream's slot did not come back"
            time.sleep(0.05)
        with http.stream("GET", url, headers=_auth(admin_key)) as r:
            assert r.status_code == 200
        opened[1].__exit__(None, None, None)
        r = http.get("/v1/jobs/00000000-0000-0000-0000-000000000000/events", headers=_auth(admin_key))
        assert r.status_code == 404  # an unknown job takes no slot
    assert app.state.stream_slots._open == {}


def test_moving_window_at_its_boundaries() -> None:
    now = [100.0]
    window = MovingWindow(2, 10, clock=lambda: now[0])
    assert [window.hit("k"), window.hit("k")] == [None, None]
    assert window.hit("k") == 10.0 and window.hit("other") is None  # refused: not counted; keys apart
    now[0] = 105.0
    assert window.hit("k") == 5.0
    now[0] = 110.0  # the first hits are exactly window_s old: still inside
    assert window.hit("k") == 0.0
    now[0] = 110.5  # both have left: two more fit
    assert [window.hit("k"), window.hit("k"), window.hit("k")] == [None, None, 10.0]
    with pytest.raises(ValueError, match="limit >= 1"):
        MovingWindow(0, 10)


def test_moving_window_decides_as_limits_in_memory_limiter() -> None:
    """The oracle: limits' MovingWindowRateLimiter over its MemoryStorage, fed the same hits at the same times."""
    oracle, item = MovingWindowRateLimiter(MemoryStorage()), RateLimitItemPerSecond(3, 1)
    mine = MovingWindow(3, 1)
    decisions = []
    for pause, key in [(0, "k")] * 4 + [(0, "j"), (0.4, "k"), (0.7, "k"), (0, "k"), (0, "k"), (0, "k"), (0, "j")]:
        time.sleep(pause)
        wait = mine.hit(key)
        allowed = oracle.hit(item, key)
        decisions.append((wait is None, allowed))
        if not allowed:
            reset = oracle.get_window_stats(item, key).reset_time - time.time()
            assert wait is not None and abs(wait - reset) < 0.05
    assert [mine for mine, _ in decisions] == [theirs for _, theirs in decisions]
    assert [ok for ok, _ in decisions] == [True, True, True, False, True, False, True, True, True, False, True]

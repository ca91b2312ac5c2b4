"""One real `latentcast serve` (SQLite, its own worker, auth on) for every client test, and one model trained on it.

The server starts once per test session: it imports torch and starts a worker, which takes seconds. Tests keep out
of each other's way by using their own series keys and model names.
"""

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from latentcast import Client
from tests.e2e.conftest import FAST
from tests.serving import free_port, start_server, stop_server
from tests.training_data import TINY

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, Unix seconds


@dataclass(frozen=True)
class Server:
    url: str
    key: str


@dataclass(frozen=True)
class Trained:
    series: str
    model: str
    job_id: str
    times: list[float]  # the series' observation times, Unix seconds
    progress: list  # every Job the training's progress callback received


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("client-server")
    port = free_port()
    env = {f"LATENTCAST_{k.upper()}": str(v) for k, v in FAST.items()}
    # Forecasts solve in the API process: a solver process would only add start-up time here.
    env.update({"LATENTCAST_DATA_DIR": str(tmp / "data"), "LATENTCAST_FORECAST_PROCESSES": "0"})
    proc = start_server(["serve", "--port", str(port)], env, tmp / "serve.log", timeout=120)
    try:
        yield Server(f"http://127.0.0.1:{port}", (tmp / "data" / "admin.key").read_text().strip())
    finally:
        stop_server(proc, timeout=90)


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, server.key) as c:
        yield c


def sine_series(client: Client, key: str, n: int = 300, seed: int = 0) -> list[float]:
    """Create `key` (channels a, b) with `n` irregular times about a second apart; returns the times."""
    rng = random.Random(seed)
    times, t = [], float(T0)
    for _ in range(n):
        t += round(rng.uniform(0.5, 1.5), 3)
        times.append(round(t, 3))
    client.create_series(key, ["a", "b"])
    client.add_observations(key, t=times, values={"a": [math.sin(x / 10) for x in times],
                                                  "b": [None if i % 5 == 0 else math.cos(x / 10)
                                                        for i, x in enumerate(times)]})
    return times


@pytest.fixture(scope="session")
def trained(server: Server) -> Trained:
    """A ready model `shared` (global frame, two epochs) on series `shared-1`, trained and waited for by the client."""
    with Client(server.url, server.key) as client:
        times = sine_series(client, "shared-1")
        started = client.train("shared", series=["shared-1"], horizon="PT60S", config=TINY)
        seen: list = []
        job = client.wait(started.job.id, progress=seen.append, timeout=180)
        assert job.status == "succeeded", job
    return Trained("shared-1", "shared", started.job.id, times, seen)

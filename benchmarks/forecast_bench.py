"""Forecast latency through real HTTP, beside the raw in-process `model.forecast` call (the limit).

    OMP_NUM_THREADS=2 python benchmarks/forecast_bench.py [--requests 200] [--database-url postgresql://...]

Trains a model of the default architecture for a couple of epochs (speed does not depend on how well it learned),
stores a series of irregular periodic data and the model as a ready version in a fresh database (SQLite by
default), starts `latentcast serve` (uvicorn) as a subprocess and measures, for 100 query times x 100 samples:
the raw call in this process alternating with one client's requests; then 32 concurrent clients, in rounds (the
median round's throughput counts). Writes
benchmarks/results/forecast.md. Targets: one-client p50 <= 2x the raw call; 32 clients >= 3x the one-client
throughput.
"""

import argparse
import asyncio
import hashlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import model  # noqa: E402
from service import storage  # noqa: E402
from service.config import Settings  # noqa: E402
from service.forecasting import forecast  # noqa: E402
from service.forecasting.query import TimeSpec  # noqa: E402
from service.storage import keys, registry  # noqa: E402
from service.storage.db import make_engine, migrate  # noqa: E402
from service.storage.tables import models  # noqa: E402
from service.times.timefmt import format_time, now_us  # noqa: E402

S = 1_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


def periodic(rng: np.random.Generator, n: int = 100, span: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """Irregular samples (times in seconds, values) of a noisy sine with random amplitude, period and phase."""
    t = np.unique(np.round(rng.uniform(0, span, n), 3))
    amp, period, phase = rng.uniform(0.5, 1.5), rng.uniform(20, 40), rng.uniform(0, 2 * np.pi)
    return t, amp * np.sin(2 * np.pi * t / period + phase) + 0.05 * rng.standard_normal(t.size)


def train(epochs: int) -> model.FittedModel:
    rng = np.random.default_rng(0)
    seqs = [model.Sequence(*periodic(rng), ("y",)) for _ in range(64)]
    return model.fit(seqs, model.ModelConfig(frame="global", epochs=epochs, gradient="backprop", seed=0))


def setup(db_url: str, fitted: model.FittedModel) -> tuple[str, int]:
    """Migrate, store the series and the ready version; return a read-scope API key and the last time (µs)."""
    migrate(db_url)
    engine = make_engine(db_url)
    t, v = periodic(np.random.default_rng(1))
    rec = storage.create_series(engine, "bench", ["y"], "", {})
    storage.upsert_observations(engine, rec.id, rec.channels, np.zeros(t.size, dtype=np.int64),
                                T0 + np.round(t * S).astype(np.int64), v)
    artifact = model.to_bytes(fitted)
    with engine.begin() as conn:
        model_id = conn.execute(insert(models).values(
            name="bench", version=1, status="ready", config=fitted.config.to_dict(), channels=["y"],
            series=["bench"], stats={"horizon_s": fitted.horizon, "context_s": fitted.context_seconds},
            artifact=artifact, artifact_sha256=hashlib.sha256(artifact).hexdigest(), created_at=now_us(),
            trained_at=now_us()).returning(models.c.id)).scalar_one()
        registry.link_series(conn, model_id, ["bench"])
    key = keys.create_key(engine, "bench", ["read"])
    engine.dispose()
    return key, T0 + int(round(t[-1] * S))


def query_range(fitted: model.FittedModel, last: int) -> tuple[int, int, int]:
    """start, end, step (µs) of 100 query times: the last half of the context and the whole horizon."""
    start = last - int(fitted.context_seconds / 2 * S)
    step = (last + int(fitted.horizon * S) - start) // 99
    return start, start + 99 * step, step


def raw_plan(db_url: str, fitted: model.FittedModel, last: int) -> forecast.Plan:
    """Exactly the context and times the server builds for the benchmark request."""
    engine = make_engine(db_url)
    start, end, step = query_range(fitted, last)
    plan = forecast.plan_series(engine, "bench", TimeSpec(start=start, end=end, step=step), name=None,
                                version=None, context_us=None)
    engine.dispose()
    assert plan.unique_s.size == 100
    return plan


def interleaved(fitted: model.FittedModel, plan: forecast.Plan, url: str, params: dict, headers: dict,
                n: int) -> tuple[list, list]:
    """n raw in-process calls and n one-client HTTP requests, alternating, so that both see the same machine
    load (the machine may be shared); returns (raw latencies, HTTP latencies) in seconds."""
    raw, http = [], []
    with httpx.Client(headers=headers, timeout=120) as client:
        for i in range(n + 5):
            began = time.perf_counter()
            model.forecast(fitted, plan.context, plan.unique_s, samples=100)
            mid = time.perf_counter()
            r = client.get(url, params=params)
            end = time.perf_counter()
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
            if i >= 5:  # warm-up
                raw.append(mid - began)
                http.append(end - mid)
    return raw, http


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db_url: str, data_dir: str, port: int) -> subprocess.Popen:
    # No request-rate limit: 32 clients send more than its default (1,000 requests in 10 s), and this measures
    # latency, not the quota.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LATENTCAST_DATABASE_URL": db_url,
           "LATENTCAST_DATA_DIR": data_dir, "LATENTCAST_RATE_LIMIT_REQUESTS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port",
                             str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("server did not become ready")


async def clients(url: str, params: dict, headers: dict, n_clients: int, per_client: int) -> tuple[list, float]:
    """`n_clients` concurrent clients, each `per_client` requests back to back; (latencies, wall seconds)."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=n_clients)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=120) as ac:

        async def one(count: int) -> None:
            for _ in range(count):
                began = time.perf_counter()
                r = await ac.get(url, params=params)
                latencies.append(time.perf_counter() - began)
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code}: {r.text[:300]}")

        await asyncio.gather(*(one(2) for _ in range(n_clients)))  # warm-up
        latencies.clear()
        began = time.perf_counter()
        await asyncio.gather(*(one(per_client) for _ in range(n_clients)))
        return latencies, time.perf_counter() - began


def row(name: str, lat: list[float], throughput: float) -> str:
    ms = np.array(lat) * 1000
    return (f"| {name} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 99):.1f} | {throughput:.1f} | "
            f"{len(lat)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200, help="requests per measurement (per client: /32)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="32-client rounds of --requests each; the median counts")
    ap.add_argument("--database-url", default=None, help="an empty database; default a fresh SQLite file")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "forecast.md")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="lc-bench-")
    db_url = args.database_url or f"sqlite:///{tmp}/latentcast.db"
    db_url = db_url.replace("postgresql://", "postgresql+psycopg://", 1)
    print("training the benchmark model ...", flush=True)
    fitted = train(args.epochs)
    key, last = setup(db_url, fitted)
    # The raw call runs with the torch threads the server uses for forecasts.
    settings = Settings()
    torch.set_num_threads(settings.forecast_torch_threads or torch.get_num_threads())
    plan = raw_plan(db_url, fitted, last)
    port = free_port()
    server = start_server(db_url, tmp, port)
    try:
        url = f"http://127.0.0.1:{port}/v1/series/bench/forecast"
        start, end, step = query_range(fitted, last)
        params = {"start": format_time(start), "end": format_time(end), "step": f"{step / S:.6f}",
                  "samples": "100"}
        headers = {"Authorization": f"Bearer {key}"}
        raw, one = interleaved(fitted, plan, url, params, headers, args.requests)
        print(f"raw p50 {np.median(raw) * 1000:.1f} ms, 1 client p50 {np.median(one) * 1000:.1f} ms", flush=True)
        many, rounds = [], []
        for _ in range(args.rounds):  # this machine's speed drifts: the median round is the figure
            latencies, wall = asyncio.run(clients(url, params, headers, 32, max(1, args.requests // 32)))
            many += latencies
            rounds.append(len(latencies) / wall)
        print(f"32 clients p50 {np.median(many) * 1000:.1f} ms, rounds {[round(r, 1) for r in rounds]} req/s",
              flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    one_tp, many_tp = len(one) / sum(one), float(np.median(rounds))
    ratio_latency = np.median(one) / np.median(raw)
    ratio_tp = many_tp / one_tp
    lines = [
        "# Forecast latency (benchmarks/forecast_bench.py)",
        "",
        f"100 query times x 100 samples per request; model: default architecture ({fitted.config.latent_dim}-d "
        f"latent, {fitted.config.encoder} encoder, {fitted.config.solver}); database: "
        f"{'PostgreSQL' if 'postgresql' in db_url else 'SQLite'}; machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s) for "
        f"forecasts (LATENTCAST_FORECAST_TORCH_THREADS), {settings.forecast_processes} solver process(es) "
        f"(LATENTCAST_FORECAST_PROCESSES), batches of up to {settings.forecast_batch_size}, 1-minute load average "
        f"at the end {os.getloadavg()[0]:.1f}. Raw calls and one-client requests alternate, so both see the same load.",
        "",
        "| measurement | p50 ms | p99 ms | requests/s | requests |",
        "|---|---|---|---|---|",
        row("raw `model.forecast` in-process", raw, len(raw) / sum(raw)),
        row("HTTP, 1 client", one, one_tp),
        row("HTTP, 32 concurrent clients", many, many_tp),
        "",
        f"32-client rounds (requests/s; the table gives their median, and every round's latencies): "
        f"{', '.join(f'{r:.1f}' for r in rounds)}.",
        "",
        f"- one-client p50 / raw p50 = **{ratio_latency:.2f}** (target <= 2): "
        f"{'met' if ratio_latency <= 2 else 'MISSED'}",
        f"- 32-client / one-client throughput = **{ratio_tp:.2f}** (target >= 3): "
        f"{'met' if ratio_tp >= 3 else 'MISSED'}",
        "",
        f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python benchmarks/forecast_bench.py "
        f"--requests {args.requests} --rounds {args.rounds}`",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

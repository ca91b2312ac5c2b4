"""Ingest speed: observations through real HTTP (a `latentcast serve` process) beside the database driver alone.

    python benchmarks/ingest_bench.py                       # SQLite and PostgreSQL, writes benchmarks/results/ingest.md
    python benchmarks/ingest_bench.py --backends sqlite --values 200000 --repeat 1   # a quick look

HTTP: `--values` values POSTed as columns JSON batches of `--batch` values (RFC 3339 times, `--channels` channels
observed at every time), one request after another on one keep-alive connection (the standard library's
http.client), each answered after its commit.
Direct (the limit): the same rows, the same batches, one transaction per batch, written with the driver and nothing
else: sqlite3 executemany (INSERT, and the idempotent INSERT … ON CONFLICT upsert), sqlite3 multi-row INSERT
statements (the service's own for new rows, its fastest), the same with ON CONFLICT (its fastest upsert) and psycopg
binary COPY of one numpy-laid-out stream per channel, as the service writes new rows (and COPY into a staging table
followed by INSERT … ON CONFLICT). Every run starts from an empty observations table; the median of `--repeat` runs
is reported, and HTTP is compared with the fastest direct path of its backend and with its fastest upsert (the job
the service does: a value sent twice is stored once).

The HTTP clock starts once the server has settled: `serve` starts a training worker and a solver process beside
itself, whose imports (torch) take several CPU-seconds; on a small machine they would otherwise be counted as
ingest time, as the direct paths never are.
"""

import argparse
import http.client
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from itertools import repeat
from pathlib import Path

import httpx
import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.storage import bulk  # noqa: E402
from service.storage.db import migrate  # noqa: E402
from service.times.timefmt import format_times  # noqa: E402

ON_CONFLICT = " ON CONFLICT (series_id, channel, t) DO UPDATE SET value = excluded.value"
UPSERT = "INSERT INTO observations (series_id, channel, t, value) VALUES ({p}, {p}, {p}, {p})" + ON_CONFLICT


def make_batches(values: int, batch: int, channels: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Irregular times (µs, gaps 1 ms to 2 s) and values (T, C): `values` in all, `batch` per batch."""
    rng = np.random.default_rng(seed)
    rows = values // channels
    t = 1_772_366_400_000_000 + np.cumsum(rng.integers(1_000, 2_000_000, rows))
    v = np.round(rng.normal(20, 5, (rows, channels)), 4)
    per = batch // channels
    return [(t[i:i + per], v[i:i + per]) for i in range(0, rows, per)]


def names(channels: int) -> list[str]:
    return [f"c{j}" for j in range(channels)]


def http_bodies(batches: list[tuple[np.ndarray, np.ndarray]], channels: int) -> list[bytes]:
    return [json.dumps({"t": format_times(t), "values": {n: v[:, j].tolist() for j, n in enumerate(names(channels))}})
            .encode() for t, v in batches]


def flat_rows(series_id: int, t: np.ndarray, v: np.ndarray, channels: int) -> list[tuple]:
    rows: list[tuple] = []
    for j, n in enumerate(names(channels)):
        rows += zip(repeat(series_id), repeat(n), t.tolist(), v[:, j].tolist())
    return rows


# --- databases -------------------------------------------------------------------------------------------------

class Database:
    """A fresh, migrated database of one backend; `reset()` empties it and makes one series with `channels`."""

    def __init__(self, backend: str, workdir: Path, pg_admin: str, channels: int):
        self.backend, self.channels = backend, channels
        if backend == "sqlite":
            self.path = workdir / "bench.db"
            self.url = f"sqlite:///{self.path}"
        else:
            self.name = f"lc_bench_{uuid.uuid4().hex[:8]}"
            self.admin = pg_admin
            with psycopg.connect(pg_admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = pg_admin.rsplit("/", 1)[0] + "/" + self.name
        migrate(self.url.replace("postgresql://", "postgresql+psycopg://"))

    def connect(self):
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.path, isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
                conn.execute(f"PRAGMA {pragma}")
            return conn
        return psycopg.connect(self.url, autocommit=True)

    def reset(self) -> int:
        conn = self.connect()
        try:
            conn.execute("DELETE FROM observations")
            conn.execute("DELETE FROM api_keys")
            conn.execute("DELETE FROM series")
            if self.backend == "postgresql":
                conn.execute("VACUUM ANALYZE observations")
            p = "?" if self.backend == "sqlite" else "%s"
            conn.execute(f"INSERT INTO series (key, channels, description, metadata, created_at) "
                         f"VALUES ({p}, {p}, '', '{{}}', 0)", ("direct", json.dumps(names(self.channels))))
            return conn.execute("SELECT id FROM series WHERE key = 'direct'").fetchone()[0]
        finally:
            conn.close()

    def count(self) -> int:
        conn = self.connect()
        try:
            return conn.execute("SELECT count(*) FROM observations").fetchone()[0]
        finally:
            conn.close()

    def drop(self) -> None:
        if self.backend == "postgresql":
            with psycopg.connect(self.admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# --- direct paths: (connection, series_id, t, v, channels) per batch ---------------------------------------------

def sqlite_insert(conn, sid, t, v, c):
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO observations (series_id, channel, t, value) VALUES (?, ?, ?, ?)",
                     flat_rows(sid, t, v, c))
    conn.execute("COMMIT")


def sqlite_multirow(conn, sid, t, v, c, on_conflict=""):
    """The driver's fastest path: multi-row INSERT statements, the very ones the service writes new rows with;
    with on_conflict=ON_CONFLICT, each statement an upsert (the driver's fastest)."""
    conn.execute("BEGIN IMMEDIATE")
    for j, name in enumerate(names(c)):
        for statement, parameters in bulk.sqlite_inserts(sid, name, t, v[:, j]):
            conn.execute(statement + on_conflict, parameters)
    conn.execute("COMMIT")


def sqlite_upsert(conn, sid, t, v, c):
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(UPSERT.format(p="?"), flat_rows(sid, t, v, c))
    conn.execute("COMMIT")


def pg_copy(conn, sid, t, v, c):
    """The driver's fastest path: one binary COPY stream per channel, laid out by numpy as the service does."""
    with conn.transaction(), conn.cursor() as cur:
        for j, name in enumerate(names(c)):
            with cur.copy("COPY observations (series_id, channel, t, value) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(bulk.pgcopy_records(sid, name, t, v[:, j]))


def pg_staging_upsert(conn, sid, t, v, c):
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS staging (series_id int, channel text, t bigint, value float8) "
                    "ON COMMIT DELETE ROWS")
        for j, name in enumerate(names(c)):
            with cur.copy("COPY staging FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(bulk.pgcopy_records(sid, name, t, v[:, j]))
        cur.execute("INSERT INTO observations SELECT * FROM staging ON CONFLICT (series_id, channel, t) "
                    "DO UPDATE SET value = excluded.value WHERE observations.value IS DISTINCT FROM excluded.value")


DIRECT: dict[str, list[tuple[str, Callable]]] = {
    "sqlite": [("sqlite3 executemany INSERT", sqlite_insert), ("sqlite3 executemany upsert", sqlite_upsert),
               ("sqlite3 multi-row INSERT", sqlite_multirow),
               ("sqlite3 multi-row upsert", partial(sqlite_multirow, on_conflict=ON_CONFLICT))],
    "postgresql": [("psycopg binary COPY", pg_copy), ("psycopg COPY to staging + upsert", pg_staging_upsert)],
}


def run_direct(db: Database, fn: Callable, batches: list) -> float:
    sid = db.reset()
    conn = db.connect()
    try:
        start = time.perf_counter()
        for t, v in batches:
            fn(conn, sid, t, v, db.channels)
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    assert db.count() == sum(len(t) for t, _ in batches) * db.channels
    return elapsed


# --- HTTP ------------------------------------------------------------------------------------------------------

def _tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) used so far by process `root` and all its descendants (Linux /proc)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    tree, grew = {root}, True
    while grew:
        before = len(tree)
        tree |= {pid for pid, (ppid, _) in stats.items() if ppid in tree}
        grew = len(tree) > before
    total = sum(stats[pid][1] for pid in tree if pid in stats)
    return total / os.sysconf("SC_CLK_TCK")


def wait_settled(pid: int, timeout: float = 120.0) -> float:
    """Wait until process `pid` and its children use under 5% of a CPU over one second; returns the seconds waited."""
    start = time.monotonic()
    used = _tree_cpu_seconds(pid)
    while time.monotonic() - start < timeout:
        time.sleep(1.0)
        now = _tree_cpu_seconds(pid)
        if now - used < 0.05:
            break
        used = now
    return time.monotonic() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db: Database, workdir: Path):
        self.port = free_port()
        self.data = workdir / f"data-{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LATENTCAST_DATA_DIR": str(self.data),
               "LATENTCAST_DATABASE_URL": db.url}
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(self.port),
                                      "--log-level", "warning"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        self.settled_after = wait_settled(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def run_http(db: Database, workdir: Path, bodies: list[bytes], channels: int, expect: int) -> tuple[float, float]:
    """(seconds for all bodies, seconds to re-send all of them again, every value unchanged).

    The timed requests go through the standard library's http.client, the leanest Python client: the client
    shares the machine's cores with the server and waits for each answer, so its own CPU time per request is
    added to the figure (httpx spends about 0.6 ms a request more than http.client here)."""
    db.reset()  # empty, and no keys: the server makes its admin key
    server = Server(db, workdir)
    try:
        key = (server.data / "admin.key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        r = httpx.post(f"{server.base}/v1/series", json={"key": "bench", "channels": names(channels)},
                       headers=headers)
        assert r.status_code == 201, r.text
        url = "/v1/series/bench/observations"
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)

        def post(body: bytes) -> dict:
            conn.request("POST", url, body=body, headers=headers)
            answer = conn.getresponse()
            text = answer.read()
            assert answer.status == 200, text[:500]
            return json.loads(text)

        try:
            start = time.perf_counter()
            for body in bodies:
                post(body)
            elapsed = time.perf_counter() - start
            start = time.perf_counter()
            for body in bodies:
                got = post(body)
                assert got["unchanged"] == got["received"], got
            resend = time.perf_counter() - start
        finally:
            conn.close()
    finally:
        server.stop()
    assert db.count() == expect
    return elapsed, resend


# --- report ----------------------------------------------------------------------------------------------------

def environment() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return (f"{os.cpu_count()} CPU ({cpu}), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"psycopg {psycopg.__version__}, load average before the run {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--values", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--postgres", default=os.environ.get("LATENTCAST_TEST_POSTGRES_URL",
                                                         "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ingest.md")
    args = ap.parse_args()

    batches = make_batches(args.values, args.batch, args.channels)
    total = sum(len(t) for t, _ in batches) * args.channels
    bodies = http_bodies(batches, args.channels)
    env = environment()
    lines = [
        "# Ingest benchmark", "",
        f"`python benchmarks/ingest_bench.py --values {args.values} --batch {args.batch} --channels {args.channels} "
        f"--repeat {args.repeat}` on {time.strftime('%Y-%m-%d')}: {total:,} values in batches of {args.batch:,} "
        f"({args.channels} channel(s), RFC 3339 times, columns JSON, "
        f"{statistics.mean(map(len, bodies)) / 1024:.0f} KiB "
        f"per body), one transaction per batch, median of {args.repeat} runs from an empty table.", "",
        f"Machine: {env}.", "",
        "| backend | path | seconds | values/s | HTTP / fastest direct | HTTP / fastest direct upsert |",
        "|---|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            db = Database(backend, Path(tmp), args.postgres, args.channels)
            try:
                direct = {label: [] for label, _ in DIRECT[backend]}
                http, resend = [], []
                for _ in range(args.repeat):
                    for label, fn in DIRECT[backend]:
                        direct[label].append(run_direct(db, fn, batches))
                    h, r = run_http(db, Path(tmp), bodies, args.channels, total)
                    http.append(h)
                    resend.append(r)
                    print(backend, {k: round(v[-1], 2) for k, v in direct.items()}, "http", round(h, 2),
                          "resend", round(r, 2), flush=True)
            finally:
                db.drop()
            best = min(statistics.median(v) for v in direct.values())
            # the driver's fastest idempotent write, the job the service does (a re-sent batch changes nothing):
            # SQLite's multi-row upsert, PostgreSQL's COPY to a staging table + upsert
            upsert = min(statistics.median(v) for k, v in direct.items() if "upsert" in k)
            for label, secs in direct.items():
                s = statistics.median(secs)
                lines.append(f"| {backend} | direct: {label} | {s:.2f} | {total / s:,.0f} | | |")
            s = statistics.median(http)
            lines.append(f"| {backend} | **HTTP** POST columns JSON | {s:.2f} | {total / s:,.0f} | "
                         f"**{best / s:.0%}** | {upsert / s:.0%} |")
            s = statistics.median(resend)
            lines.append(f"| {backend} | HTTP re-send (all unchanged) | {s:.2f} | {total / s:,.0f} | "
                         f"{best / s:.0%} | {upsert / s:.0%} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

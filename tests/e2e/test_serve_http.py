"""The real thing: `python -m service.cli serve` as a process, real HTTP, then SIGTERM and a clean exit."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service import storage
from service.config import Settings
from service.db import make_engine

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_ingest_read_back_and_stop(db_url: str, tmp_path: Path) -> None:
    port = _free_port()
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LATENTCAST_DATA_DIR": str(data),
           "LATENTCAST_DATABASE_URL": db_url, "OMP_NUM_THREADS": "1"}
    log_path = tmp_path / "server.out"
    with open(log_path, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=ROOT,
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        key = (data / "admin.key").read_text().strip()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            assert httpx.get(f"{base}/v1/series").status_code == 401
            assert c.post("/v1/series", json={"key": "e2e", "channels": ["a", "b"]}).status_code == 201
            r = c.post("/v1/series/e2e/observations", content=b"t,a,b\n1969-12-31T23:59:59.5Z,1.5,\n10.000001,,2\n",
                       headers={"content-type": "text/csv"})
            assert r.json() == {"received": 2, "inserted": 2, "updated": 0, "unchanged": 0}
            r = c.post("/v1/series/e2e/observations", json={"t": list(range(100, 5100)),
                                                            "values": {"a": [i / 7 for i in range(5000)]}})
            assert r.json()["inserted"] == 5000
            page = c.get("/v1/series/e2e/observations", params={"end": "11"}).json()
            assert page == {"t": ["1969-12-31T23:59:59.500000Z", "1970-01-01T00:00:10.000001Z"],
                            "values": {"a": [1.5, None], "b": [None, 2.0]}, "next_cursor": None}
            got = c.get("/v1/series/e2e/observations", params={"start": "100", "channels": "a"}).json()
            assert got["values"]["a"] == [i / 7 for i in range(5000)]
            assert c.get("/v1/series/e2e").json()["counts"] == {"a": 5001, "b": 1}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    log = log_path.read_text()
    assert code == 0, log
    assert key in log  # the first start printed the admin key


def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path) -> None:
    """Headers and half the body are sent, then SIGTERM: the request still completes and commits, then exit 0."""
    port = _free_port()
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LATENTCAST_DATA_DIR": str(data), "LATENTCAST_DATABASE_URL": "",
           "LATENTCAST_AUTH": "disabled", "OMP_NUM_THREADS": "1"}
    log_path = tmp_path / "server.out"
    with open(log_path, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=ROOT,
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert httpx.post(f"{base}/v1/series", json={"key": "g", "channels": ["a"]}).status_code == 201
        body = b'{"t": [1, 2, 3], "values": {"a": [1.5, 2.5, 3.5]}}'
        head = (f"POST /v1/series/g/observations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head + body[:10])
            time.sleep(0.5)  # the server has the headers: the request is in flight
            server.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            sock.sendall(body[10:])
            reply = b""
            while b"}" not in reply.split(b"\r\n\r\n", 1)[-1]:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply
        assert b'"inserted":3' in reply
        assert server.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # The write was committed before the process ended.
    engine = make_engine(Settings(data_dir=data).db_url)
    try:
        rec = storage.get_series(engine, "g")
        assert storage.read_matrix(engine, rec.id, ["a"])[1][:, 0].tolist() == [1.5, 2.5, 3.5]
    finally:
        engine.dispose()

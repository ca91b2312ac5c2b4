"""The real thing: `python -m service.cli serve` as a process, real HTTP, then SIGTERM and a clean exit."""

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from service import storage
from service.config import Settings
from service.storage.db import make_engine
from tests.serving import free_port, start_server, stop_server

pytestmark = pytest.mark.slow


def test_serve_ingest_read_back_and_stop(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    log_path = tmp_path / "server.out"
    server = start_server(["serve", "--port", str(port)], {"LATENTCAST_DATA_DIR": str(data),
                                                           "LATENTCAST_DATABASE_URL": db_url}, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
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
        code = stop_server(server)
    log = log_path.read_text()
    assert code == 0, log
    # The first start said where the admin key is, and never the key itself; the files are the owner's alone.
    assert key not in log and str((data / "admin.key").resolve()) in log
    assert (data / "admin.key").stat().st_mode & 0o777 == 0o600 and data.stat().st_mode & 0o777 == 0o700
    if db_url.startswith("sqlite"):
        assert Path(db_url.split("///", 1)[1]).stat().st_mode & 0o777 == 0o600


def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path) -> None:
    """Headers and half the body are sent, then SIGTERM: the request still completes and commits, then exit 0."""
    port = free_port()
    data = tmp_path / "data"
    log_path = tmp_path / "server.out"
    server = start_server(["serve", "--port", str(port)], {"LATENTCAST_DATA_DIR": str(data),
                          "LATENTCAST_DATABASE_URL": "", "LATENTCAST_AUTH": "disabled"}, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
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

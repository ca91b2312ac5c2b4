"""Slow and oversized clients against a real uvicorn configured as `latentcast serve` configures it: a head (request
line and headers) that does not arrive in time is a 408, one too large a 431, a body that does not arrive in time a
408, each in the error shape and on a connection the server then closes; a prompt request on the same server is
served as usual."""

import json
import socket
import time
from collections.abc import Iterator

import pytest

from service.api.http_server import server_options
from service.app import create_app
from service.config import Settings
from tests.serving import uvicorn_thread

LIMIT_S = 1.0


@pytest.fixture
def served(tmp_path) -> Iterator[int]:
    """The app behind uvicorn with `serve`'s options and one-second limits, in a thread; yields the port."""
    settings = Settings(data_dir=tmp_path / "data", auth="disabled", forecast_processes=0,
                        header_timeout_seconds=LIMIT_S, body_timeout_seconds=LIMIT_S, max_header_bytes=4096,
                        keep_alive_seconds=LIMIT_S)
    from service.storage.db import migrate

    migrate(settings.db_url)
    with uvicorn_thread(create_app(settings), **server_options(settings)) as port:
        yield port


def _answer_then_close(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes, float]:
    """Read until the server closes the connection: (status, headers, body, seconds it took)."""
    started = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body, time.monotonic() - started


def _error(body: bytes, code: str) -> str:
    error = json.loads(body)["error"]
    assert error["code"] == code and error["details"] == [], error
    return error["message"]


def test_a_prompt_request_is_served(served: int) -> None:
    with socket.create_connection(("127.0.0.1", served)) as sock:
        body = b'{"key": "s", "channels": ["v"]}'
        sock.sendall(b"POST /v1/series HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        status, _, _, _ = _answer_then_close(sock)
    assert status == 201


def _trickle(sock: socket.socket, data: bytes) -> float:
    """Send `data` a byte every 0.1 s until the server closes the connection or 3 limits pass; the start time."""
    started = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:  # closed by the server while still sending: what the tests want
            break
        time.sleep(0.1)
        if time.monotonic() - started > 3 * LIMIT_S:
            break
    return started


def test_an_idle_connection_is_closed_after_keep_alive_seconds(served: int) -> None:
    with socket.create_connection(("127.0.0.1", served)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _body, took = _answer_then_close(sock)
    assert status == 200 and "connection" not in headers and 0.5 * LIMIT_S < took < 3 * LIMIT_S


def test_headers_sent_byte_by_byte_past_the_limit_are_a_408(served: int) -> None:
    with socket.create_connection(("127.0.0.1", served)) as sock:
        started = _trickle(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        status, headers, body, _ = _answer_then_close(sock)
    assert time.monotonic() - started < 3 * LIMIT_S
    assert status == 408 and headers["connection"] == "close"
    assert "LATENTCAST_HEADER_TIMEOUT_SECONDS" in _error(body, "request_timeout")


def test_a_connection_that_sends_nothing_is_closed(served: int) -> None:
    with socket.create_connection(("127.0.0.1", served)) as sock:
        status, _, body, took = _answer_then_close(sock)
    assert status == 408 and took < 3 * LIMIT_S
    _error(body, "request_timeout")


def test_headers_over_the_size_limit_are_a_431(served: int) -> None:
    # 2 MB of head, still arriving when the answer goes out: a server that closed at once, with those bytes unread,
    # sent a reset that reached the client before it read the 431
    with socket.create_connection(("127.0.0.1", served)) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 2_000_000 + b"\r\n")
        except OSError:
            pass
        status, headers, body, took = _answer_then_close(sock)
    assert status == 431 and headers["connection"] == "close" and took < LIMIT_S
    assert "LATENTCAST_MAX_HEADER_BYTES" in _error(body, "headers_too_large")


@pytest.mark.parametrize("path", ["/v1/series", "/v1/series/slow/observations"])  # FastAPI's body, a route's own
def test_a_body_sent_byte_by_byte_past_the_limit_is_a_408(served: int, path: str) -> None:
    body = b'{"key": "slow", "channels": ["v"]}'
    with socket.create_connection(("127.0.0.1", served)) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (path.encode(), len(body)))
        started = _trickle(sock, body)
        status, headers, answer, _ = _answer_then_close(sock)
    assert time.monotonic() - started < 3 * LIMIT_S
    assert status == 408 and headers["connection"] == "close"
    assert "LATENTCAST_BODY_TIMEOUT_SECONDS" in _error(answer, "request_timeout")
    with socket.create_connection(("127.0.0.1", served)) as sock:  # nothing was written
        sock.sendall(b"GET /v1/series/slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _answer_then_close(sock)[0] == 404


def test_a_slow_request_does_not_hold_up_a_prompt_one(served: int) -> None:
    with socket.create_connection(("127.0.0.1", served)) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        with socket.create_connection(("127.0.0.1", served)) as prompt:
            prompt.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, body, took = _answer_then_close(prompt)
        assert (status, body) == (200, b'{"status":"ok"}') and took < LIMIT_S
        assert _answer_then_close(slow)[0] == 408

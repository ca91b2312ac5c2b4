"""An unexpected exception in a route: a 500 in the error shape, counted, and, behind a real uvicorn server, on a
keep-alive connection that stays usable (a pooled client's next request must not meet a reset)."""

import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service import storage
from service.app import create_app
from service.config import Settings
from tests.serving import uvicorn_thread

INTERNAL = {"error": {"code": "internal_error", "message": "internal server error", "details": []}}


@pytest.fixture
def failing_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """GET /v1/series fails inside the route, as a storage bug or a driver error would."""
    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("storage exploded")

    monkeypatch.setattr(storage, "list_series", boom)


def test_an_unexpected_exception_is_a_500_in_the_error_shape(client: TestClient, failing_list: None) -> None:
    r = client.get("/v1/series")  # the TestClient would raise the exception if it left the app
    assert r.status_code == 500 and r.json() == INTERNAL
    assert "connection" not in r.headers
    assert client.get("/v1/series/nope").status_code == 404  # the app goes on
    metrics = client.get("/metrics").text
    assert 'latentcast_http_requests_total{method="GET",route="/v1/series",status="500"} 1.0' in metrics


@pytest.fixture
def served(settings: Settings) -> Iterator[int]:
    """The app behind uvicorn, configured as `latentcast serve` runs it, in a thread of this process (so that the
    test can make a route fail); yields the port."""
    with uvicorn_thread(create_app(settings.model_copy(update={"auth": "disabled"}))) as port:
        yield port


def _exchange(sock: socket.socket, path: str) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET on an open connection: (status, headers with lower-case names, body)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection without answering GET {path}: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection in the middle of a body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def test_the_connection_stays_usable_after_a_500(served: int, failing_list: None) -> None:
    with socket.create_connection(("127.0.0.1", served), timeout=30) as sock:
        status, headers, body = _exchange(sock, "/v1/series")
        assert status == 500 and body == b'{"error":{"code":"internal_error","message":"internal server error",' \
                                          b'"details":[]}}'
        assert headers["content-type"] == "application/json"
        assert headers.get("connection") != "close"  # so the client keeps the connection: it must still serve
        status, _, body = _exchange(sock, "/healthz")
        assert (status, body) == (200, b'{"status":"ok"}')
        status, _, _ = _exchange(sock, "/v1/series")  # and the next failure too
        assert status == 500

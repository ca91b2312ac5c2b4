"""How `latentcast serve` runs uvicorn: its options, and the limits on a request's head that uvicorn lacks.

uvicorn times out only an idle keep-alive connection (`timeout_keep_alive`, after a response), and any byte received
cancels that timer; with httptools, the parser it picks when installed, nothing bounds the size of a request's head.
So a client that sends its request line and headers a byte at a time, or sends nothing at all, or megabytes of
headers, would hold a connection (and the memory) for as long as it likes. `HeadLimits` closes such a connection:

    no complete head within header_timeout_seconds of the connection   408 request_timeout, connection closed
    opening (or of the first byte of a later request on it)
    a head of more than max_header_bytes                                431 headers_too_large, connection closed

After a 431 the server ends its side (a FIN) and reads, discarding, what the client still sends for up to LINGER_S
before it closes: closing a socket with unread bytes in it sends a reset, which can reach the client before it
has read the answer (a 100 KB head, still arriving: the 431 lost to "connection reset by peer"). A 408's client
is slow by definition, and its connection is closed at once.

The body is bounded by ASGI middleware (service.api.limits): its size (413) and the time it takes to arrive (408).
"""

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from service.config import Settings

log = logging.getLogger(__name__)

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
LINGER_S = 2.0  # after a rejection, what the client still sends is read and discarded for at most this long


class HeadLimits(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on each request's head (line and headers).

    The deadline is armed when the connection opens and when a later request's first byte arrives, and disarmed
    when its head is complete: a slow body, a long computation or a long response are never cut by it.
    """

    head_timeout: float = 10.0
    max_head_bytes: int = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._linger: asyncio.TimerHandle | None = None  # set once rejected: the connection only drains

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _reject(self, status: int, code: str, message: str, linger: bool = False) -> None:
        log.warning("%s from %s: %s", code, self.client, message)
        self._disarm()
        body = json.dumps({"error": {"code": code, "message": message, "details": []}}).encode()
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body))
        if not linger or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the answer, then its end; the client's close (eof_received) ends the connection
        self._linger = self.loop.call_later(LINGER_S, self.transport.close)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        cycle: RequestResponseCycle | None = self.cycle  # uvicorn annotates it as set; it is None until a request
        if cycle is not None and not cycle.response_complete:
            self._arm()  # a pipelined request's head is waiting behind a response being written: judge it after
            return
        self._reject(408, "request_timeout", f"the request's line and headers did not arrive within "
                                             f"{self.head_timeout:g} s (LATENTCAST_HEADER_TIMEOUT_SECONDS)")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._linger is not None:  # rejected: what follows is read only to be discarded
            return
        super().data_received(data)
        if self._head_timer is None or self.transport.is_closing():
            return
        # Still inside a head: all of this chunk was head (a chunk that completes a head is not counted).
        self._head_bytes += len(data)
        if self._head_bytes > self.max_head_bytes:
            self._reject(431, "headers_too_large", f"the request's line and headers are over {self.max_head_bytes} "
                                                   "bytes (LATENTCAST_MAX_HEADER_BYTES)", linger=True)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run / uvicorn.Config keyword arguments for these settings (besides app, host, port, log level)."""
    protocol = type("LatentcastHttpProtocol", (HeadLimits,), {"head_timeout": settings.header_timeout_seconds,
                                                              "max_head_bytes": settings.max_header_bytes})
    return {"http": protocol, "timeout_keep_alive": settings.keep_alive_seconds, "timeout_graceful_shutdown": 30}

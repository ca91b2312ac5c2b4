"""Limits on every request's body, enforced while it streams in: its size (Request.body() has none) and the time it
takes to arrive (uvicorn has no such timeout: a client sending a byte now and then would hold a connection and a
worker thread for ever). The request's head is bounded by the server itself (service.api.http_server)."""

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyRefused(Exception):
    """The body broke a limit while the app was reading it."""


class _BodyGuard:
    """A limit checked while the body streams in. `_receive` wraps the app's receive and raises BodyRefused when
    the limit breaks; whatever the app would then answer (FastAPI, for one, turns a body-read failure into a 400) is
    replaced by this limit's error, and the connection is closed."""

    status: int
    code: str

    def __init__(self, app: ASGIApp):
        self.app = app

    def _message(self) -> str:
        raise NotImplementedError

    def _receive(self, receive: Receive) -> Receive:
        raise NotImplementedError

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": {"code": self.code, "message": self._message(), "details": []}}).encode()
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    def _refused_at_once(self, scope: Scope) -> bool:
        """Whether the request's head alone breaks the limit."""
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif self._refused_at_once(scope):
            await self._reject(send)
        else:
            await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = {"refused": False, "started": False}
        inner = self._receive(receive)

        async def checked_receive() -> Message:
            try:
                return await inner()
            except BodyRefused:
                state["refused"] = True
                raise

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await self._reject(send)
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, checked_receive, guarded_send)
        except BodyRefused:
            if not state["started"]:
                state["started"] = True
                await self._reject(send)


class BodySizeLimit(_BodyGuard):
    """Answer 413 to a body over `max_bytes`: at once from Content-Length, else as soon as the stream passes it."""

    status, code = 413, "payload_too_large"

    def __init__(self, app: ASGIApp, max_bytes: int):
        super().__init__(app)
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"request body over the limit of {self.max_bytes} bytes (LATENTCAST_MAX_BODY_BYTES)"

    def _receive(self, receive: Receive) -> Receive:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyRefused(self._message())
            return message

        return limited_receive

    def _refused_at_once(self, scope: Scope) -> bool:
        return any(name == b"content-length" and value.isdigit() and int(value) > self.max_bytes
                   for name, value in scope["headers"])


class BodyTimeout(_BodyGuard):
    """Answer 408 to a request whose body has not all arrived `seconds` after the app first asked for it.

    One deadline for the whole body, not one per chunk: a client trickling a byte at a time gains nothing. Once the
    last chunk is in, `receive` is passed through untouched (it then waits, as long as it takes, for a disconnect).
    """

    status, code = 408, "request_timeout"

    def __init__(self, app: ASGIApp, seconds: float):
        super().__init__(app)
        self.seconds = seconds

    def _message(self) -> str:
        return f"the request body did not arrive within {self.seconds:g} s (LATENTCAST_BODY_TIMEOUT_SECONDS)"

    def _receive(self, receive: Receive) -> Receive:
        deadline: float | None = None
        done = False

        async def timed_receive() -> Message:
            nonlocal deadline, done
            if done:
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.seconds
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyRefused(self._message()) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        return timed_receive


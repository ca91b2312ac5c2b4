"""Limits on every request's body, enforced while it streams in: its size (Request.body() has none) and the time it
takes to arrive (uvicorn has no such timeout: a client sending a byte now and then would hold a connection and a
worker thread for ever). The request's head is bounded by the server itself (service.http_server)."""

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answer 413 to a body over `max_bytes`: at once from Content-Length, else as soon as the stream passes it.

    A route that was reading the body when the cap was passed gets an exception; whatever it would then answer is
    replaced by the 413 (FastAPI, for one, would turn a body-read failure into a 400).
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"request body over the limit of {self.max_bytes} bytes (LATENTCAST_MAX_BODY_BYTES)"

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": {"code": "payload_too_large", "message": self._message(), "details": []}})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body.encode()})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        state = {"received": 0, "over": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["over"] = True
                    raise BodyTooLarge(self._message())
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await self._reject(send)
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not state["started"]:
                state["started"] = True
                await self._reject(send)


class BodyTimedOut(Exception):
    pass


class BodyTimeout:
    """Answer 408 to a request whose body has not all arrived `seconds` after the app first asked for it, and close
    the connection.

    One deadline for the whole body, not one per chunk: a client trickling a byte at a time gains nothing. Once the
    last chunk is in, `receive` is passed through untouched (it then waits, as long as it takes, for a disconnect).
    As with the size limit, what the app would answer to the failed read is replaced by the 408.
    """

    def __init__(self, app: ASGIApp, seconds: float):
        self.app = app
        self.seconds = seconds

    def _message(self) -> str:
        return f"the request body did not arrive within {self.seconds:g} s (LATENTCAST_BODY_TIMEOUT_SECONDS)"

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"error": {"code": "request_timeout", "message": self._message(), "details": []}}).encode()
        await send({"type": "http.response.start", "status": 408,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict = {"deadline": None, "done": False, "expired": False, "started": False}

        async def timed_receive() -> Message:
            if state["done"]:
                return await receive()
            if state["deadline"] is None:
                state["deadline"] = asyncio.get_running_loop().time() + self.seconds
            try:
                async with asyncio.timeout_at(state["deadline"]):
                    message = await receive()
            except TimeoutError:
                state["expired"] = True
                raise BodyTimedOut(self._message()) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["done"] = True
            return message

        async def guarded_send(message: Message) -> None:
            if state["expired"]:
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await self._reject(send)
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except BodyTimedOut:
            if not state["started"]:
                state["started"] = True
                await self._reject(send)

"""Every error the API returns, one class per failure, and the one JSON shape they all take.

    ApiError                      {"error": {"code", "message", "details"}}
    ├── BadRequest        400     bad_request
    ├── Unauthorized      401     unauthorized (no key, unknown or revoked key)
    ├── Forbidden         403     forbidden (the key lacks the route's scope, or a tenant's key creates outside
    │                             its prefix)
    ├── NotFound          404     not_found (or a more precise code, e.g. no_model)
    ├── Conflict          409     conflict (duplicate key, version not ready, job already finished)
    ├── PayloadTooLarge   413     payload_too_large
    ├── Unprocessable     422     validation_error; details: [{"loc": [...], "msg": "..."}] (or a more precise code,
    │                             e.g. solver_error, non_finite_forecast)
    ├── UnsupportedMedia  415     unsupported_media_type
    ├── TooManyRequests   429     rate_limited (with Retry-After), too_many_jobs, too_many_streams: a per-key quota
    ├── Unavailable       503     database_unavailable, queue_unavailable (unreachable, restarting, busy),
    │                             solver_unavailable (a forecast's solver process died twice on it); with Retry-After
    └── InsufficientStorage 507   insufficient_storage (the database's disk is full)

FastAPI's own `{"detail": ...}` bodies are replaced everywhere by `install_handlers`. A body that is not JSON gets
one answer whichever code reads it (`invalid_json`), and an unexpected exception a 500 in this shape on a connection
that stays open (`InternalErrors`). `InternalErrors` also turns an outage of what the API stands on into its status
(a database that cannot be reached: 503; a full disk: 507), in one place for every route, by the `faults` function
it is given (service.storage.db.storage_fault). Limits enforced outside the routes answer in the same shape: 408
request_timeout and 413 payload_too_large for a body (service.api.limits), 408 request_timeout and 431
headers_too_large for a request's head (service.api.http_server).
"""

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[Any] = []


class ErrorBody(BaseModel):
    error: ErrorInfo


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: list[Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers
        if code is not None:
            self.code = code

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str, **kw: Any):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"}, **kw)


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMedia(ApiError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(ApiError):
    status, code = 422, "validation_error"

    @classmethod
    def at(cls, loc: list[str | int], msg: str, *, code: str | None = None) -> "Unprocessable":
        """One invalid field: `loc` is its path from the request part (body, query, path) down."""
        return cls(f"{'.'.join(map(str, loc))}: {msg}", code=code, details=[{"loc": loc, "msg": msg}])


class TooManyRequests(ApiError):
    """429: the key is past one of its quotas; with Retry-After when the wait is known (a request rate)."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int | None = None):
        super().__init__(message, code=code,
                         headers={"Retry-After": str(retry_after)} if retry_after is not None else None)


RETRY_AFTER_S = 5  # what a 503 asks a client to wait: about a database's or a queue's restart


class Unavailable(ApiError):
    """503 with Retry-After: something the service needs is down for now; the same request may succeed later."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = RETRY_AFTER_S):
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


class InsufficientStorage(ApiError):
    status, code = 507, "insufficient_storage"


def invalid_json(exc: ValueError | RecursionError) -> Unprocessable:
    """The answer to a request body that JSON cannot decode (malformed, not UTF-8, nested too deeply): 422 at body."""
    if isinstance(exc, RecursionError):
        reason = "nested too deeply"
    elif isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        reason = str(exc)
    else:  # an integer past Python's digit limit, less the advice to Python programmers after the ";"
        reason = str(exc).split(";")[0]
    return Unprocessable.at(["body"], f"invalid JSON: {reason}")


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
                 415: "unsupported_media_type", 422: "validation_error", 429: "too_many_requests",
                 503: "unavailable", 507: "insufficient_storage"}

_DESCRIPTIONS = {400: "Bad request", 401: "No API key, or an unknown or revoked one",
                 403: "The API key lacks the scope this route needs, or is limited to a series-key prefix that "
                      "what it would create lies outside",
                 404: "Not found", 409: "Conflict",
                 413: "Request body too large", 415: "Unsupported media type",
                 422: "Invalid input: each detail names the field and the reason",
                 429: "The API key is past a quota: its request rate (rate_limited, with Retry-After), its training "
                      "jobs (too_many_jobs) or its open event streams (too_many_streams)",
                 503: "Unavailable for now (the database or queue cannot be reached, or is busy): retry after the "
                      "Retry-After header's seconds",
                 507: "Insufficient storage: the database's disk is full, and nothing was written"}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}


STORED_DATA = "x-stored-data"  # on a 422 response: a well-formed request can get it because of what is stored


def responses(*statuses: int, stored: str = "") -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route can return, all with the ErrorBody shape.

    `stored` says when a request that matches the schema is still refused with 422 because of what is stored (a
    channel the series lacks, too little data to train on, a time past the model's horizon): the 422 entry says so in
    its description and carries STORED_DATA, so that a client, or a schema-driven test, knows that such a 422 is
    part of the contract rather than a schema that states too little."""
    out: dict[int | str, dict[str, Any]] = {
        s: {"model": ErrorBody, "description": _DESCRIPTIONS.get(s, "Error"),
            **({"headers": _RETRY_AFTER} if s in (429, 503) else {})} for s in statuses}
    if stored:
        out[422] = {**out[422], "description": f"{out[422]['description']}; or a well-formed request that what is "
                                               f"stored cannot serve: {stored}", STORED_DATA: True}
    return out


def _loc(loc: tuple[Any, ...]) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in loc]


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if len(errors) == 1 and errors[0].get("type") == "json_invalid":  # FastAPI's body decoding failed
            loc, reason = errors[0].get("loc", ()), errors[0].get("ctx", {}).get("error", "")
            if len(loc) == 2 and isinstance(loc[1], int) and isinstance(exc.body, str):
                return invalid_json(json.JSONDecodeError(reason, exc.body, loc[1])).response()
        details = [{"loc": _loc(e.get("loc", ())), "msg": e.get("msg", "invalid")} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        message = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        return Unprocessable(message, details=details).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI's "There was an error parsing the body": not UTF-8 (a ValueError) or nested too deeply
            return invalid_json(exc.__cause__).response()
        code = _STATUS_CODES.get(exc.status_code, "error")
        detail: object = exc.detail  # a str to Starlette; FastAPI's HTTPException takes any JSON value
        message = detail if isinstance(detail, str) else code.replace("_", " ")
        body = {"error": {"code": code, "message": message, "details": []}}
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # Starlette names the first matching route's methods only
            headers["Allow"] = ", ".join(_methods_at(_req))
        return JSONResponse(body, status_code=exc.status_code, headers=headers or None)


def _methods_at(request: Request) -> list[str]:
    """Every method some route answers at the request's path (for a 405's Allow header)."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):  # included routers' routes too
        if route.path and route.methods and compile_path(route.path)[0].match(path):
            methods |= set(route.methods)
    return sorted(methods)


class InternalErrors:
    """ASGI middleware: an exception that escapes the app before its response started is logged and answered with
    a 500 in the error shape, and goes no further.

    Starlette's own catch-all (a handler for Exception) answers and then re-raises, and uvicorn closes the
    connection of a request whose app raised, without `Connection: close`: a pooled client's next request on that
    connection met a reset. An exception after the response started (a stream broken half way) still propagates:
    that response is incomplete, and the server must cut its connection.

    `faults(exc)` names the answer to an exception that is an outage rather than a bug
    (service.storage.db.storage_fault: a database that cannot be reached is a 503, a full disk a 507), or None; such
    answers are logged in one line.
    """

    def __init__(self, app: ASGIApp, faults: Callable[[Exception], ApiError | None] = lambda _exc: None):
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if started:
                raise
            fault = self.faults(exc)
            if fault is not None:  # an outage, not a bug: one line, no traceback
                log.warning("%s %s: answered %d %s: %s: %s", scope["method"], scope["path"], fault.status,
                            fault.code, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                await fault.response()(scope, receive, send)
                return
            log.exception("unhandled error", exc_info=exc)
            response = JSONResponse({"error": {"code": "internal_error", "message": "internal server error",
                                               "details": []}}, status_code=500)
            await response(scope, receive, send)

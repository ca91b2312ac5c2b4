"""What the client raises, one class per failure:

    LatentcastError          anything this package raises on purpose
    ├── ApiError             the server answered with an error: status, code, message, details from its body
    └── ServerUnreachable    no answer at all: connection refused, DNS, timeout, a dropped connection
"""

from typing import Any


class LatentcastError(Exception):
    """The base of every error the client raises on purpose."""


class ApiError(LatentcastError):
    """An error answer from the API. Every error the server gives has the body
    `{"error": {"code", "message", "details"}}`; `status` is the HTTP status (404, 422, ...)."""

    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


class ServerUnreachable(LatentcastError):
    """The request got no HTTP answer; `url` is the server that was asked."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach the latentcast server at {url}: {reason}")
        self.url = url
        self.reason = reason

"""Prometheus metrics: request counts and latency by method, route template and status (prometheus-client).

One registry per app (app.state.metrics), so that several apps in one process (tests) don't collide. The route label
is the template (`/v1/series/{key}`), never the raw path, so the number of series does not multiply the series of
metrics; unmatched paths share one label.
"""

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("latentcast_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("latentcast_http_request_duration_seconds", "Time to answer, seconds",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def route_template(scope: Scope) -> str:
    """The matched route's template with its mount prefix (`/v1/series/{key}`), or "unmatched".

    Routes of an included router may know only their own part (`/series/{key}`), so the prefix is taken from the
    request path: the part before the shortest suffix that the route's pattern matches.
    """
    route = scope.get("route")
    path: str = scope.get("path", "")  # the scope's values are Any
    regex = getattr(route, "path_regex", None)
    if route is None or regex is None:
        return "unmatched"
    template: str = route.path  # a route with a path_regex has a path template
    for i, char in enumerate(path):
        if char == "/" and regex.match(path[i:]):
            return path[:i] + template
    return "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = route_template(scope)
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - start)

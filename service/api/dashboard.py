"""The dashboard: a page at `/` and its static files under `/static/`, shipped inside this package (service/static/).

The page holds no data and needs no key: it asks the user for an API key, keeps it in the tab's sessionStorage and
sends it to the /v1 API in an Authorization header, as any client does. So serving it bypasses nothing: `/` and
`/static/*` are public, and everything they show comes from the API under the key's scopes.

Every dashboard response carries a strict Content-Security-Policy: scripts, styles and connections from this origin
only, no inline script or style, no framing. An injected `<script>` or `onerror=` attribute would not run even if a
bug ever put user text into the page as HTML (the page writes user text with textContent only). The API's own
/docs page is not covered: FastAPI's Swagger UI is an inline script that loads its code from a CDN, which this
policy would block; it keeps the headers FastAPI gives it.
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"  # service/static: package data, in the wheel

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files change with the service's version: revalidate (ETag) on every load rather than run stale code.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


class DashboardFiles(StaticFiles):
    """StaticFiles whose answers (200 and 304 alike) carry SECURITY_HEADERS. A missing file raises 404, which the
    app's handlers turn into the API's error shape."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


class _LabelledMount(Mount):
    """A Mount that names itself in the request's scope, as FastAPI's routes do, so that the metrics count its
    requests under `/static` (service.api.metrics.route_template) rather than with unmatched paths."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def install(app: FastAPI) -> None:
    """Serve the page at `/` and its files at `/static/`."""
    app.include_router(router)
    app.router.routes.append(_LabelledMount("/static", app=DashboardFiles(directory=STATIC_DIR), name="static"))

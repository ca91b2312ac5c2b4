"""Request dependencies as typed aliases. Handlers take these as parameters; none builds an engine or reads the
environment itself."""

from collections.abc import Callable
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from service.config import Settings
from service.errors import Forbidden, TooManyRequests, Unauthorized
from service.forecasting.batcher import ForecastBatcher
from service.storage import keys


# The dependencies that only read app.state are `async def`: FastAPI runs a plain `def` dependency in its thread
# pool, a round trip through another thread for an attribute read, on every request.
async def get_app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)  # app.state's attributes are Any: create_app sets them


# The app's own settings (create_app's argument), read from its state: a dependency override would work too, but
# FastAPI rebuilds every route's dependency tree on every request while any override is set (~1 ms a request).
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


EngineDep = Annotated[Engine, Depends(get_engine)]


async def get_batcher(request: Request) -> ForecastBatcher:
    return cast(ForecastBatcher, request.app.state.batcher)


BatcherDep = Annotated[ForecastBatcher, Depends(get_batcher)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer lc_…`")


_ScopeCheck = Callable[[Request, Settings, Engine, HTTPAuthorizationCredentials | None], keys.Principal]


def require_scope(scope: str) -> _ScopeCheck:
    """A dependency that lets the request through only with an active key holding `scope` (or auth disabled) within
    its request rate, and gives the handler who sent it."""

    def _check(request: Request, settings: SettingsDep, engine: EngineDep,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> keys.Principal:
        if settings.auth == "disabled":
            principal = keys.ANONYMOUS
        else:
            if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
                raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
            found = keys.authenticate(engine, credentials.credentials)
            if found is None:
                raise Unauthorized("unknown or revoked API key")
            principal = found
        # Counted before the scope check: a key's refused requests cost the service too.
        wait = request.app.state.rate_limiter.hit(principal.identity)
        if wait is not None:
            raise TooManyRequests(f"this API key sent more than {settings.rate_limit_requests} requests in "
                                  f"{settings.rate_limit_window_seconds} s: retry after {wait} s",
                                  code="rate_limited", retry_after=wait)
        if scope not in principal.scopes:
            raise Forbidden(f"this API key lacks the '{scope}' scope")
        return principal

    return _check


# As `dependencies=[ReadScope]`, or as a parameter's type (`caller: Reader`) where the handler needs the caller.
ReadScope = Depends(require_scope("read"))
WriteScope = Depends(require_scope("write"))
AdminScope = Depends(require_scope("admin"))
Reader = Annotated[keys.Principal, ReadScope]
Writer = Annotated[keys.Principal, WriteScope]

"""The FastAPI application factory."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from service.api import dashboard
from service.api.limits import BodySizeLimit, BodyTimeout
from service.api.links import add_links
from service.api.main import api_router, root_router
from service.api.metrics import Metrics, MetricsMiddleware
from service.api.quotas import RateLimiter, StreamSlots, redis_url
from service.config import Settings, get_settings
from service.errors import InternalErrors, install_handlers
from service.forecasting.batcher import ForecastBatcher
from service.forecasting.cache import ModelCache
from service.storage.db import make_engine, storage_fault


def _operation_id(route: APIRoute) -> str:
    # Stable, readable operation ids for generated clients: "<tag>-<function name>".
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. The schema must already be migrated (`latentcast migrate`, or `serve` does it)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything imported so far (torch, SQLAlchemy, FastAPI: some 300,000 objects) lives as long as the
        # process: moved out of the collector's sight, a full collection no longer walks it every few requests.
        gc.collect()
        gc.freeze()
        app.state.batcher.start()
        yield
        app.state.batcher.close()
        app.state.engine.dispose()

    app = FastAPI(title="latentcast", version="0.1.0", lifespan=lifespan,
                  description="Forecasts for irregularly sampled time series, from latent ODE models.",
                  generate_unique_id_function=_operation_id)
    app.state.settings = settings
    app.state.engine = make_engine(settings.db_url)
    # The models solved in this process, with forecast_processes=0; each solver process holds its own.
    app.state.model_cache = ModelCache(settings.model_cache_bytes)
    app.state.batcher = ForecastBatcher(settings.forecast_batch_size, settings.forecast_batch_wait_ms,
                                        torch_threads=settings.forecast_torch_threads,
                                        processes=settings.forecast_processes,
                                        cache_bytes=settings.model_cache_bytes, models=app.state.model_cache)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_requests, settings.rate_limit_window_seconds,
                                         redis=redis_url(settings.queue_url), namespace=settings.queue_name)
    app.state.stream_slots = StreamSlots(settings.max_event_streams_per_key)
    install_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BodyTimeout, seconds=settings.body_timeout_seconds)
    # Outside the size limit, whose 413 needs no help; inside the metrics, which count its 500s, 503s and 507s.
    app.add_middleware(InternalErrors, faults=storage_fault)
    app.state.metrics = Metrics()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: sees every answer, 413s too
    app.include_router(root_router)
    app.include_router(api_router)
    dashboard.install(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to change the schema
    return app

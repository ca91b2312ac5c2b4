"""Includes every route module; nothing else."""

from fastapi import APIRouter

from service.api.routes import forecast, health, jobs, keys, metrics, models, observations, series
from service.errors import responses

# Every route under /v1 needs a key, so every one can answer 429 when the key is past its request rate.
api_router = APIRouter(prefix="/v1", responses=responses(429))
api_router.include_router(forecast.router)
api_router.include_router(models.router)
api_router.include_router(jobs.router)
root_router = APIRouter()
root_router.include_router(health.router)
root_router.include_router(metrics.router)
api_router.include_router(series.router)
api_router.include_router(observations.router)
api_router.include_router(keys.router)

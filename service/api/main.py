"""Includes every route module; nothing else."""

from fastapi import APIRouter

from service.api.routes import health

api_router = APIRouter(prefix="/v1")
root_router = APIRouter()
root_router.include_router(health.router)

"""Health: /healthz (the process answers), /readyz (what it stands on answers too)."""

import logging

from fastapi import APIRouter
from sqlalchemy import text

from service.api.deps import EngineDep, SettingsDep
from service.errors import Unavailable, responses
from service.training import executor

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database, and a Redis or PostgreSQL job queue, are reachable",
            responses=responses(503))
def readyz(engine: EngineDep, settings: SettingsDep) -> dict[str, str]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 (any driver error means "not ready")
        log.warning("readyz: database unreachable: %s: %s", type(exc).__name__, (str(exc).splitlines() or [""])[0])
        raise Unavailable(f"database unreachable: {type(exc).__name__}", code="database_unavailable") from None
    # The embedded queue is a file beside the database in the data folder; a networked one is checked too. While
    # it is down, training requests are still accepted (the sweeper sends them later) but no job starts.
    if settings.queue_url is not None:
        try:
            executor.check_reachable(settings)
        except Exception as exc:  # noqa: BLE001 (any queue error means "not ready")
            log.warning("readyz: job queue unreachable: %s: %s", type(exc).__name__, (str(exc).splitlines() or [""])[0])
            raise Unavailable(f"job queue unreachable: {type(exc).__name__}", code="queue_unavailable") from None
    return {"status": "ready"}

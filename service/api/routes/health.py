from fastapi import APIRouter
from sqlalchemy import text

from service.api.deps import EngineDep
from service.errors import Unavailable, responses

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable", responses=responses(503))
def readyz(engine: EngineDep) -> dict[str, str]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        raise Unavailable(f"database unreachable: {type(exc).__name__}") from None
    return {"status": "ready"}

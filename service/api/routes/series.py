"""Series: create, list, get, change, delete."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from service import storage
from service.api.deps import EngineDep, ReadScope, WriteScope
from service.api.pagination import after_key, key_cursor
from service.api.schemas import KEY_PATTERN, SeriesCreate, SeriesList, SeriesPublic, SeriesUpdate
from service.errors import Unprocessable, responses
from service.timefmt import format_time

router = APIRouter(prefix="/series", tags=["series"])

SeriesKey = Annotated[str, Path(pattern=KEY_PATTERN, max_length=128, description="the series key")]


def public(engine, records: list[storage.SeriesRecord]) -> list[SeriesPublic]:  # noqa: ANN001
    """Series objects with their per-channel counts and time range (one grouped query for all of them)."""
    stats = storage.channel_stats(engine, [r.id for r in records])
    out = []
    for r in records:
        s = stats[r.id]
        out.append(SeriesPublic(
            key=r.key, channels=list(r.channels), description=r.description, metadata=r.metadata,
            created_at=format_time(r.created_at), counts={c: s[c].count if c in s else 0 for c in r.channels},
            first_t=format_time(min(x.first_t for x in s.values())) if s else None,
            last_t=format_time(max(x.last_t for x in s.values())) if s else None))
    return out


@router.post("", status_code=201, dependencies=[WriteScope], responses=responses(401, 403, 409, 413, 422, 503, 507),
             summary="Create a series")
def create_series(body: SeriesCreate, engine: EngineDep) -> SeriesPublic:
    rec = storage.create_series(engine, body.key, body.channels, body.description, body.metadata)
    return public(engine, [rec])[0]


@router.get("", dependencies=[ReadScope], responses=responses(401, 403, 422, 503), summary="List series by key")
def list_series(engine: EngineDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                cursor: Annotated[str | None, Query(max_length=400)] = None,
                prefix: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9._-]*$")] = None
                ) -> SeriesList:
    after = after_key(cursor) if cursor else None
    records = storage.list_series(engine, prefix=prefix, after=after, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    return SeriesList(items=public(engine, records), next_cursor=key_cursor(records[-1].key) if more else None)


@router.get("/{key}", dependencies=[ReadScope], responses=responses(401, 403, 404, 422, 503), summary="Get a series")
def get_series(key: SeriesKey, engine: EngineDep) -> SeriesPublic:
    return public(engine, [storage.get_series(engine, key)])[0]


@router.patch("/{key}", dependencies=[WriteScope], responses=responses(401, 403, 404, 413, 422, 503, 507),
              summary="Change description or metadata, or add channels")
def update_series(key: SeriesKey, body: SeriesUpdate, engine: EngineDep) -> SeriesPublic:
    try:
        rec = storage.update_series(engine, key, description=body.description, metadata=body.metadata,
                                    channels=body.channels)
    except ValueError as exc:
        raise Unprocessable.at(["body", "channels"], str(exc)) from None
    return public(engine, [rec])[0]


@router.delete("/{key}", status_code=204, dependencies=[WriteScope], responses=responses(401, 403, 404, 422, 503, 507),
               summary="Delete a series and its observations")
def delete_series(key: SeriesKey, engine: EngineDep) -> Response:
    storage.delete_series(engine, key)
    return Response(status_code=204)

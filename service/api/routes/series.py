"""Series: create, list, get, change, delete."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import Engine

from service import storage
from service.api.deps import EngineDep, Reader, Writer
from service.api.pagination import after_key, key_cursor
from service.api.schemas import KEY_PATTERN, SeriesCreate, SeriesList, SeriesPublic, SeriesUpdate
from service.errors import Forbidden, Unprocessable, responses
from service.storage.keys import Principal
from service.times.timefmt import format_time

router = APIRouter(prefix="/series", tags=["series"])

SeriesKey = Annotated[str, Path(pattern=KEY_PATTERN, max_length=128, description="the series key")]


def check_sees(caller: Principal, key: str) -> None:
    """404, as for a series that does not exist, when `key` is outside the caller's prefix."""
    if not caller.sees_series(key):
        raise storage.missing(key)


def public(engine: Engine, records: list[storage.SeriesRecord]) -> list[SeriesPublic]:
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


@router.post("", status_code=201, responses=responses(401, 403, 409, 413, 422, 503, 507),
             summary="Create a series")
def create_series(body: SeriesCreate, engine: EngineDep, caller: Writer) -> SeriesPublic:
    if not caller.sees_series(body.key):
        raise Forbidden(f"this API key is limited to series keys starting with {caller.prefix!r}")
    rec = storage.create_series(engine, body.key, body.channels, body.description, body.metadata)
    return public(engine, [rec])[0]


@router.get("", responses=responses(401, 403, 422, 503), summary="List series by key")
def list_series(engine: EngineDep, caller: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                cursor: Annotated[str | None, Query(max_length=400)] = None,
                prefix: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9._-]*$")] = None
                ) -> SeriesList:
    after = after_key(cursor) if cursor else None
    within = caller.within(prefix)
    if within is False:  # a prefix outside the caller's: nothing it may see matches
        return SeriesList(items=[], next_cursor=None)
    records = storage.list_series(engine, prefix=within, after=after, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    return SeriesList(items=public(engine, records), next_cursor=key_cursor(records[-1].key) if more else None)


@router.get("/{key}", responses=responses(401, 403, 404, 422, 503), summary="Get a series")
def get_series(key: SeriesKey, engine: EngineDep, caller: Reader) -> SeriesPublic:
    check_sees(caller, key)
    return public(engine, [storage.get_series(engine, key)])[0]


@router.patch("/{key}", responses=responses(401, 403, 404, 413, 422, 503, 507,
                                                      stored="a stored channel left out of `channels`"),
              summary="Change description or metadata, or add channels")
def update_series(key: SeriesKey, body: SeriesUpdate, engine: EngineDep, caller: Writer) -> SeriesPublic:
    check_sees(caller, key)
    try:
        rec = storage.update_series(engine, key, description=body.description, metadata=body.metadata,
                                    channels=body.channels)
    except ValueError as exc:
        raise Unprocessable.at(["body", "channels"], str(exc)) from None
    return public(engine, [rec])[0]


@router.delete("/{key}", status_code=204, responses=responses(401, 403, 404, 422, 503, 507),
               summary="Delete a series and its observations")
def delete_series(key: SeriesKey, engine: EngineDep, caller: Writer) -> Response:
    check_sees(caller, key)
    storage.delete_series(engine, key)
    return Response(status_code=204)

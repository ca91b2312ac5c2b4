"""Observations of one series: batch upsert (rows JSON, columns JSON, CSV), paged range read, range delete."""

import csv
import io
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from service import storage
from service.api.deps import EngineDep, Reader, SettingsDep, Writer
from service.api.pagination import after_time, time_cursor
from service.api.responses import NumbersResponse
from service.api.routes.series import SeriesKey, check_sees
from service.api.schemas import TIME_PATTERN, TIME_SCHEMA, Deleted, ObservationPage, WriteResult
from service.errors import Unprocessable, UnsupportedMedia, responses
from service.ingest import parse_observations
from service.times.timefmt import TimeParseError, format_times, parse_time

router = APIRouter(prefix="/series/{key}/observations", tags=["observations"])

TimeQuery = Annotated[str | None, Query(max_length=64, json_schema_extra={"pattern": TIME_PATTERN},
                                        description="RFC 3339 (percent-encode '+') or Unix seconds")]
ChannelsQuery = Annotated[str | None, Query(max_length=8400, description="comma-separated channel names")]

_TIME_SCHEMA = {"oneOf": [*TIME_SCHEMA["oneOf"]],
                "description": "RFC 3339 with an offset, or Unix seconds as a JSON number; digits below the "
                               "microsecond are rounded to the nearest, half to even"}
_VALUE_SCHEMA = {"type": ["number", "null"], "description": "null: not observed"}
_ROWS = {"title": "ObservationRows", "type": "object", "required": ["observations"], "additionalProperties": False,
         "properties": {"observations": {"type": "array", "maxItems": 1_000_000, "items": {
             "type": "object", "required": ["t", "values"], "additionalProperties": False,
             "properties": {"t": _TIME_SCHEMA, "values": {"type": "object", "minProperties": 1,
                                                          "additionalProperties": _VALUE_SCHEMA}}}}}}
_COLUMNS = {"title": "ObservationColumns", "type": "object", "required": ["t", "values"],
            "additionalProperties": False, "description": "every list as long as t",
            "properties": {"t": {"type": "array", "items": _TIME_SCHEMA, "maxItems": 1_000_000},
                           "values": {"type": "object", "additionalProperties": {"type": "array",
                                                                                 "items": _VALUE_SCHEMA}}}}
_BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"oneOf": [_ROWS, _COLUMNS]}},
    "text/csv": {"schema": {"type": "string", "description": "header t,<channel>,…; an empty cell: not observed"}},
}}}


def _time_param(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_time(value, in_query=True)
    except TimeParseError as exc:
        raise Unprocessable.at(["query", name], str(exc)) from None


def _channels_param(value: str | None, rec: storage.SeriesRecord) -> list[str]:
    if not value:
        return list(rec.channels)
    names = value.split(",")
    unknown = [n for n in names if n not in rec.channels]
    if unknown:
        raise Unprocessable.at(["query", "channels"], f"unknown channels {', '.join(unknown)[:200]}; "
                                                      f"the series has {', '.join(rec.channels)}")
    return list(dict.fromkeys(names))


@router.post("", responses=responses(401, 403, 404, 413, 415, 422, 503, 507, stored="a channel the series lacks"),
             openapi_extra=_BODY_DOC, summary="Write observations (rows JSON, columns JSON or CSV)")
async def write_observations(key: SeriesKey, request: Request, engine: EngineDep,
                             settings: SettingsDep, caller: Writer) -> WriteResult:
    check_sees(caller, key)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/json", "text/csv"):
        raise UnsupportedMedia(f"Content-Type {media or '(none)'!r} is not accepted: send application/json "
                               "(rows or columns) or text/csv")
    body = await request.body()  # service.api.limits caps its size while it streams in

    def work() -> WriteResult:
        rec = storage.get_series(engine, key)
        batch = parse_observations(body, media, rec.channels, settings.max_values_per_request)
        counts = storage.upsert_observations(engine, rec.id, rec.channels, batch.ch, batch.t, batch.v)
        return WriteResult(received=counts.received, inserted=counts.inserted, updated=counts.updated,
                           unchanged=counts.unchanged)

    # Parsing and writing are CPU and driver work: off the event loop.
    return await run_in_threadpool(work)


@router.get("", response_model=ObservationPage,
            responses={**responses(401, 403, 404, 422, 503, stored="`channels` naming one the series lacks"),
                       200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "JSON columns, or CSV (header t,<channel>,…) for Accept: text/csv"}},
            summary="Read observations in a time range, by pages")
def read_observations(key: SeriesKey, engine: EngineDep, caller: Reader, start: TimeQuery = None, end: TimeQuery = None,
                      channels: ChannelsQuery = None, limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
                      cursor: Annotated[str | None, Query(max_length=64)] = None,
                      accept: Annotated[str | None, Header(include_in_schema=False)] = None) -> Response:
    check_sees(caller, key)
    start_us, end_us = _time_param(start, "start"), _time_param(end, "end")
    if cursor:
        after = after_time(cursor) + 1  # keyset on t: rows inserted meanwhile never shift the next page
        start_us = after if start_us is None else max(start_us, after)
    rec = storage.get_series(engine, key)
    names = _channels_param(channels, rec)
    times, values, more = storage.read_page(engine, rec.id, names, start_us, end_us, limit)
    next_cursor = time_cursor(int(times[-1])) if more else None
    stamps = format_times(times)
    if accept and "text/csv" in accept.lower():
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["t", *names])
        cells = np.where(np.isnan(values), "", values.astype(object)).tolist() if len(times) else []
        writer.writerows([s, *(repr(x) if x != "" else "" for x in row)] for s, row in zip(stamps, cells, strict=True))
        headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
        return Response(out.getvalue(), media_type="text/csv", headers=headers)
    columns = {}
    for j, name in enumerate(names):
        col = values[:, j].astype(object)
        col[np.isnan(values[:, j])] = None
        columns[name] = col.tolist()
    return NumbersResponse({"t": stamps, "values": columns, "next_cursor": next_cursor})


@router.delete("", responses=responses(401, 403, 404, 422, 503, 507, stored="`channels` naming one the series "
                                                                               "lacks"),
               summary="Delete observations in a time range")
def delete_observations(key: SeriesKey, engine: EngineDep, caller: Writer, start: TimeQuery = None,
                        end: TimeQuery = None, channels: ChannelsQuery = None) -> Deleted:
    check_sees(caller, key)
    start_us, end_us = _time_param(start, "start"), _time_param(end, "end")
    rec = storage.get_series(engine, key)
    names = _channels_param(channels, rec)
    return Deleted(deleted=storage.delete_observations(engine, rec.id, names, start_us, end_us))

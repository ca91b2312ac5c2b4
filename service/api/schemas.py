"""Request and response bodies of the series and observation routes, split by direction, every field bounded.

Request models are strict (no "21" read as 21, no extra fields). Observation bodies are parsed by service.ingest
(three forms, exact times); their OpenAPI schema is written out in routes/observations.py.
"""

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from service.storage.tables import KEY_PATTERN as KEY_PATTERN  # re-exported: the routes' path patterns

MAX_METADATA_BYTES = 16 * 1024
# Objects and arrays inside one another, the metadata object itself included. Deeper documents are refused before
# they are stored: encoders (pydantic's among them) give up on deep nesting, and a stored one would break every read.
MAX_METADATA_DEPTH = 16

Name = Annotated[str, StringConstraints(pattern=KEY_PATTERN, max_length=128)]
# What the time parser takes, as the OpenAPI document states it: RFC 3339 with an offset (days to 28 so that every
# month has them) or Unix seconds within the years 1000-9999. Durations: the common forms, each within 100 years
# (the parser also takes combinations such as P1DT2H).
_RFC3339 = (r"[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
            r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])")
TIME_PATTERN = rf"^(-?[0-9]{{1,10}}(\.[0-9]{{1,9}})?|{_RFC3339})$"
RFC3339_PATTERN = rf"^{_RFC3339}$"  # in a body a number is a JSON number, never a string
TIME_SCHEMA = {"oneOf": [{"type": "string", "pattern": RFC3339_PATTERN},
                         {"type": "number", "minimum": -30_610_224_000, "maximum": 253_402_300_799}]}
DURATION_PATTERN = (r"^(P[1-9][0-9]{0,3}D|P[1-9][0-9]{0,2}W|PT[1-9][0-9]{0,4}H|PT[1-9][0-9]{0,5}[MS]|"
                    r"[1-9][0-9]{0,8}(\.[0-9]{1,6})?)$")
Time = Annotated[str, Field(description="RFC 3339 UTC, six fractional digits, e.g. 2026-03-01T12:00:00.250000Z")]


def _unique(channels: list[str]) -> list[str]:
    dups = sorted({c for c in channels if channels.count(c) > 1})
    if dups:
        raise ValueError(f"channel names must be unique; repeated: {', '.join(dups)}")
    return channels


def _depth(value: Any) -> int:
    """Levels of objects and arrays in a JSON value (a flat object: 1), counted level by level, not recursively."""
    depth, level = 0, [value]
    while level := [v for v in level if isinstance(v, dict | list)]:
        depth += 1
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c)]
    return depth


def _small_json(metadata: dict[str, Any]) -> dict[str, Any]:
    depth = _depth(metadata)
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"metadata is nested {depth} levels deep; the limit is {MAX_METADATA_DEPTH}")
    try:
        size = len(json.dumps(metadata, allow_nan=False, separators=(",", ":")).encode())
    except ValueError:
        raise ValueError("metadata must not contain NaN or Infinity") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return metadata


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain the NUL character (\\u0000)")  # PostgreSQL text cannot hold it
    return text


Channels = Annotated[list[Name], Field(min_length=1, max_length=64, json_schema_extra={"uniqueItems": True}),
                     AfterValidator(_unique)]
Description = Annotated[str, Field(max_length=1000), AfterValidator(_no_nul)]
Metadata = Annotated[dict[str, Any], AfterValidator(_small_json),
                     Field(description="any JSON object, at most 16 KiB as compact JSON and 16 levels deep")]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class SeriesCreate(_Strict):
    key: Name
    channels: Channels
    description: Description = ""
    metadata: Metadata = Field(default_factory=dict)


class SeriesUpdate(_Strict):
    description: Description | None = None
    metadata: Metadata | None = None
    channels: Channels | None = Field(None, description="the full new list: existing channels plus new ones")


class SeriesPublic(BaseModel):
    key: str
    channels: list[str]
    description: str
    metadata: dict[str, Any]
    created_at: Time
    counts: dict[str, int] = Field(description="observations per channel")
    first_t: Time | None
    last_t: Time | None


class SeriesList(BaseModel):
    items: list[SeriesPublic]
    next_cursor: str | None


class WriteResult(BaseModel):
    received: int = Field(description="values received; an identical repeat inside the batch counts once")
    inserted: int
    updated: int
    unchanged: int


class ObservationPage(BaseModel):
    t: list[Time]
    values: dict[str, list[float | None]]
    next_cursor: str | None


class Deleted(BaseModel):
    deleted: int

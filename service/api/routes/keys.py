"""API keys: create (the key is in that answer alone), list, revoke. Admin scope only."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import AdminScope, EngineDep
from service.api.pagination import after_api_key, api_key_cursor
from service.api.schemas import KEY_PATTERN, Time
from service.errors import Conflict, NotFound, Unprocessable, responses
from service.storage import keys
from service.times.timefmt import format_time

router = APIRouter(prefix="/keys", tags=["keys"])

Scope = Literal["read", "write", "admin"]
KeyName = Annotated[str, Path(pattern=KEY_PATTERN, max_length=128, description="the key's name")]


class KeyCreate(BaseModel):
    # A prefix (a tenant) and the admin scope exclude each other: stated in the schema, checked by keys.create_key.
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={
        "if": {"required": ["prefix"], "properties": {"prefix": {"type": "string"}}},
        "then": {"properties": {"scopes": {"not": {"contains": {"const": "admin"}}}}}})

    name: str = Field(pattern=KEY_PATTERN, max_length=128, description="A unique name for the key (never reused)")
    scopes: list[Scope] = Field(min_length=1, max_length=3, description="admin implies read and write")
    prefix: str | None = Field(None, pattern=KEY_PATTERN, max_length=128,
                               description="Limit the key to series keys starting with this (a tenant): it sees, "
                                           "trains on and forecasts nothing else, and its model names must start "
                                           "with it too. Not with the admin scope")


class KeyPublic(BaseModel):
    name: str
    scopes: list[Scope]
    key_start: str | None = Field(description="The key's first characters, to tell keys apart (null for keys made "
                                              "before they were kept)")
    prefix: str | None = Field(description="The series-key prefix the key is limited to; null: every series")
    created_at: Time
    revoked_at: Time | None


class KeyCreated(KeyPublic):
    key: str = Field(description="The key itself: shown in this answer only, and never stored")


class KeyList(BaseModel):
    items: list[KeyPublic]
    next_cursor: str | None


def key_public(info: keys.KeyInfo) -> KeyPublic:
    return KeyPublic(name=info.name, scopes=list(info.scopes), key_start=info.key_start, prefix=info.prefix,
                     created_at=format_time(info.created_at),
                     revoked_at=format_time(info.revoked_at) if info.revoked_at is not None else None)


@router.post("", status_code=201, dependencies=[AdminScope], responses=responses(401, 403, 409, 413, 422, 503, 507),
             summary="Create an API key (the answer holds the key: it is shown once)")
def create_key(body: KeyCreate, engine: EngineDep) -> KeyCreated:
    try:
        key, info = keys.create_key_info(engine, body.name, list(dict.fromkeys(body.scopes)), body.prefix)
    except keys.KeyNameTaken as exc:
        raise Conflict(str(exc), code="key_exists") from None
    except keys.BadScopes as exc:  # admin with a prefix: the other checks were pydantic's
        raise Unprocessable.at(["body", "prefix"], str(exc)) from None
    return KeyCreated(**key_public(info).model_dump(), key=key)


@router.get("", dependencies=[AdminScope], responses=responses(401, 403, 422, 503),
            summary="API keys by name, active and revoked (never the keys themselves)")
def list_keys(engine: EngineDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
              cursor: Annotated[str | None, Query(max_length=400)] = None) -> KeyList:
    infos = keys.list_keys(engine, after=after_api_key(cursor) if cursor else None, limit=limit + 1)
    more = len(infos) > limit
    infos = infos[:limit]
    return KeyList(items=[key_public(info) for info in infos],
                   next_cursor=api_key_cursor(infos[-1].name) if more else None)


@router.post("/{name}/revoke", dependencies=[AdminScope], responses=responses(401, 403, 404, 409, 422, 503, 507),
             summary="Revoke an API key: it is refused from the next request on")
def revoke_key(name: KeyName, engine: EngineDep) -> KeyPublic:
    try:
        return key_public(keys.revoke_key(engine, name))
    except keys.NoSuchKey:
        raise NotFound(f"no key named {name!r}", code="no_key") from None
    except keys.AlreadyRevoked as exc:
        raise Conflict(str(exc), code="key_revoked") from None

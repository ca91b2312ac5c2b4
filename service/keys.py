"""API keys: created, listed and revoked here; only a SHA-256 hash of each key is stored.

A key is `lc_` + 43 URL-safe characters (256 random bits), so a fast hash is enough: there is nothing to
brute-force that a slow hash would protect. Its first KEY_START_CHARS characters are kept in the clear so that a
listing can tell keys apart (what GitHub and Stripe show of a token): 5 random characters, 30 of its 256 bits.

    KeyError_             a key operation that cannot be done; the message says why
    ├── BadScopes         the scopes are not a non-empty subset of SCOPES
    ├── KeyNameTaken      a key with this name exists (active or revoked: names are never reused)
    ├── NoSuchKey         no key has this name
    └── AlreadyRevoked    the key was revoked before
"""

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.tables import api_keys
from service.timefmt import now_us

SCOPES = ("read", "write", "admin")
KEY_START_CHARS = 8  # "lc_" and 5 random characters


class KeyError_(ValueError):
    """A key operation that cannot be done; the message says why."""


class BadScopes(KeyError_):
    pass


class KeyNameTaken(KeyError_):
    pass


class NoSuchKey(KeyError_):
    pass


class AlreadyRevoked(KeyError_):
    pass


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a key: never the key itself. Times in µs since the epoch; key_start is None for keys
    made before it was kept."""

    name: str
    scopes: tuple[str, ...]
    key_start: str | None
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True)
class Principal:
    """Who sends a request: an active key's id, name, hash and scopes (admin implying read and write), or, with
    authentication disabled, nobody in particular (`key_id` None)."""

    key_id: int | None
    name: str | None
    key_hash: str | None
    scopes: frozenset[str]

    @property
    def identity(self) -> str:
        """What per-key quotas count under: the key's hash (unique, and no secret), or one shared name without
        authentication."""
        return self.key_hash or "anonymous"


ANONYMOUS = Principal(key_id=None, name=None, key_hash=None, scopes=frozenset(SCOPES))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(row: object) -> KeyInfo:
    m = row._mapping  # type: ignore[attr-defined]
    return KeyInfo(m["name"], tuple(m["scopes"]), m["key_start"], m["created_at"], m["revoked_at"])


def create_key(engine: Engine, name: str, scopes: list[str] | tuple[str, ...]) -> str:
    """Store a new key named `name` with `scopes` and return the key itself (shown once, never stored)."""
    return create_key_info(engine, name, scopes)[0]


def create_key_info(engine: Engine, name: str, scopes: list[str] | tuple[str, ...]) -> tuple[str, KeyInfo]:
    """Like create_key, with what a listing shows of the new key."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise BadScopes(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {', '.join(scopes)}")
    key = "lc_" + secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            conn.execute(insert(api_keys).values(name=name, key_hash=hash_key(key), key_start=key[:KEY_START_CHARS],
                                                 scopes=sorted(set(scopes)), created_at=now_us()))
            row = conn.execute(select(api_keys).where(api_keys.c.name == name)).one()
    except IntegrityError:
        raise KeyNameTaken(f"a key named {name!r} exists already") from None
    return key, _info(row)


def list_keys(engine: Engine, *, after: str | None = None, limit: int | None = None) -> list[KeyInfo]:
    """Keys by name, active and revoked: up to `limit` of them, names strictly after `after`."""
    query = select(api_keys).order_by(api_keys.c.name).limit(limit)
    if after is not None:
        query = query.where(api_keys.c.name > after)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_info(r) for r in rows]


def revoke_key(engine: Engine, name: str) -> KeyInfo:
    """Revoke the active key `name` and return it as it is now; NoSuchKey or AlreadyRevoked otherwise."""
    with engine.begin() as conn:
        done = conn.execute(update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                            .values(revoked_at=now_us())).rowcount
        row = conn.execute(select(api_keys).where(api_keys.c.name == name)).first()
    if row is None:
        raise NoSuchKey(f"no active key named {name!r}")
    if not done:
        raise AlreadyRevoked(f"the key named {name!r} is revoked already")
    return _info(row)


def authenticate(engine: Engine, key: str) -> Principal | None:
    """The Principal of an active key, or None for an unknown or revoked one."""
    digest = hash_key(key)
    with engine.connect() as conn:
        row = conn.execute(select(api_keys.c.id, api_keys.c.name, api_keys.c.scopes)
                           .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))).first()
    if row is None:
        return None
    scopes = set(row.scopes)
    if "admin" in scopes:
        scopes |= {"read", "write"}
    return Principal(key_id=row.id, name=row.name, key_hash=digest, scopes=frozenset(scopes))


def scopes_for(engine: Engine, key: str) -> frozenset[str] | None:
    """The scopes of an active key, or None for an unknown or revoked one. admin implies read and write."""
    principal = authenticate(engine, key)
    return None if principal is None else principal.scopes


def any_keys(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(api_keys.c.id).limit(1)).first() is not None

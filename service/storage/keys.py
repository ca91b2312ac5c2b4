"""API keys: created, listed and revoked here; only a SHA-256 hash of each key is stored.

A key is `lc_` + 43 URL-safe characters (256 random bits), so a fast hash is enough: there is nothing to
brute-force that a slow hash would protect. Its first KEY_START_CHARS characters are kept in the clear so that a
listing can tell keys apart (what GitHub and Stripe show of a token): 5 random characters, 30 of its 256 bits.

    KeyError_             a key operation that cannot be done; the message says why
    ├── BadScopes         the scopes are not a non-empty subset of SCOPES, or admin with a prefix
    ├── BadPrefix         the prefix is not the beginning of a series key
    ├── KeyNameTaken      a key with this name exists (active or revoked: names are never reused)
    ├── NoSuchKey         no key has this name
    └── AlreadyRevoked    the key was revoked before
"""

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.storage.tables import KEY_PATTERN, api_keys
from service.times.timefmt import now_us

SCOPES = ("read", "write", "admin")
KEY_START_CHARS = 8  # "lc_" and 5 random characters


class KeyError_(ValueError):
    """A key operation that cannot be done; the message says why."""


class BadScopes(KeyError_):
    pass


class BadPrefix(KeyError_):
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
    prefix: str | None
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True)
class Principal:
    """Who sends a request: an active key's id, name, hash, scopes (admin implying read and write) and series-key
    prefix (a tenant's key; None: every series), or, with authentication disabled, nobody in particular."""

    key_id: int | None
    name: str | None
    key_hash: str | None
    scopes: frozenset[str]
    prefix: str | None = None

    @property
    def tenant(self) -> str:
        """The scope of this key's idempotency keys: its prefix, '' for a key without one."""
        return self.prefix or ""

    def sees_series(self, key: str) -> bool:
        return self.prefix is None or key.startswith(self.prefix)

    def sees_model(self, name: str, series: Sequence[str]) -> bool:
        """A model version is a tenant's when its name and every series it was trained on start with the prefix."""
        return self.prefix is None or (name.startswith(self.prefix) and all(s.startswith(self.prefix) for s in series))

    @overload
    def within(self, asked: str) -> str | Literal[False]: ...
    @overload
    def within(self, asked: None) -> str | None: ...

    def within(self, asked: str | None) -> str | Literal[False] | None:
        """The key prefix to search under for a client's `asked` prefix (None: none asked): the longer of the two
        when one starts with the other, False when they exclude each other (nothing can match)."""
        if self.prefix is None or (asked is not None and asked.startswith(self.prefix)):
            return asked
        if asked is None or self.prefix.startswith(asked):
            return self.prefix
        return False

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
    return KeyInfo(m["name"], tuple(m["scopes"]), m["key_start"], m["prefix"], m["created_at"], m["revoked_at"])


def create_key(engine: Engine, name: str, scopes: list[str] | tuple[str, ...], prefix: str | None = None) -> str:
    """Store a new key named `name` with `scopes`, limited to series keys starting with `prefix` when given, and
    return the key itself (shown once, never stored)."""
    return create_key_info(engine, name, scopes, prefix)[0]


def create_key_info(engine: Engine, name: str, scopes: list[str] | tuple[str, ...],
                    prefix: str | None = None) -> tuple[str, KeyInfo]:
    """Like create_key, with what a listing shows of the new key."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise BadScopes(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {', '.join(scopes)}")
    if prefix is not None and not re.fullmatch(KEY_PATTERN, prefix):
        raise BadPrefix(f"the prefix must be the beginning of a series key: 1 to 128 letters, digits, '.', '_', "
                        f"'-', not starting with one of the last three; got {prefix[:140]!r}")
    if prefix is not None and "admin" in scopes:
        # an admin key manages every key, so it could make itself one without the prefix
        raise BadScopes("a key limited to a prefix cannot hold the admin scope")
    key = "lc_" + secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            conn.execute(insert(api_keys).values(name=name, key_hash=hash_key(key), key_start=key[:KEY_START_CHARS],
                                                 scopes=sorted(set(scopes)), prefix=prefix, created_at=now_us()))
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


# Built once: every request runs it, and building a statement costs about as much as running this one.
_ACTIVE_BY_HASH = (select(api_keys.c.id, api_keys.c.name, api_keys.c.scopes, api_keys.c.prefix)
                   .where(api_keys.c.key_hash == bindparam("digest"), api_keys.c.revoked_at.is_(None)))


def authenticate(engine: Engine, key: str) -> Principal | None:
    """The Principal of an active key, or None for an unknown or revoked one."""
    digest = hash_key(key)
    with engine.connect() as conn:
        row = conn.execute(_ACTIVE_BY_HASH, {"digest": digest}).first()
    if row is None:
        return None
    scopes = set(row.scopes)
    if "admin" in scopes:
        scopes |= {"read", "write"}
    return Principal(key_id=row.id, name=row.name, key_hash=digest, scopes=frozenset(scopes), prefix=row.prefix)


def scopes_for(engine: Engine, key: str) -> frozenset[str] | None:
    """The scopes of an active key, or None for an unknown or revoked one. admin implies read and write."""
    principal = authenticate(engine, key)
    return None if principal is None else principal.scopes


def any_keys(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(api_keys.c.id).limit(1)).first() is not None

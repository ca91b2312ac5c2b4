"""API keys: created, listed and revoked here; only a SHA-256 hash of each key is stored.

A key is `lc_` + 43 URL-safe characters (256 random bits), so a fast hash is enough: there is nothing to
brute-force that a slow hash would protect.
"""

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from service.tables import api_keys
from service.timefmt import now_us

SCOPES = ("read", "write", "admin")


class KeyError_(ValueError):
    """A key operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class KeyInfo:
    name: str
    scopes: tuple[str, ...]
    created_at: int
    revoked_at: int | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(engine: Engine, name: str, scopes: list[str] | tuple[str, ...]) -> str:
    """Store a new key named `name` with `scopes` and return the key itself (shown once, never stored)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise KeyError_(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {', '.join(scopes)}")
    key = "lc_" + secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            conn.execute(insert(api_keys).values(name=name, key_hash=hash_key(key),
                                                 scopes=sorted(set(scopes)), created_at=now_us()))
    except IntegrityError:
        raise KeyError_(f"a key named {name!r} exists already") from None
    return key


def list_keys(engine: Engine) -> list[KeyInfo]:
    with engine.begin() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.name)).mappings().all()
    return [KeyInfo(r["name"], tuple(r["scopes"]), r["created_at"], r["revoked_at"]) for r in rows]


def revoke_key(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(update(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                            .values(revoked_at=now_us())).rowcount
    if not done:
        raise KeyError_(f"no active key named {name!r}")


def scopes_for(engine: Engine, key: str) -> frozenset[str] | None:
    """The scopes of an active key, or None for an unknown or revoked one. admin implies read and write."""
    with engine.connect() as conn:
        row = conn.execute(select(api_keys.c.scopes).where(api_keys.c.key_hash == hash_key(key),
                                                           api_keys.c.revoked_at.is_(None))).first()
    if row is None:
        return None
    scopes = set(row.scopes)
    if "admin" in scopes:
        scopes |= {"read", "write"}
    return frozenset(scopes)


def any_keys(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(api_keys.c.id).limit(1)).first() is not None

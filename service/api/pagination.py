"""Page cursors of every list route: one codec.

A cursor is URL-safe base64, without padding, of a short text whose form each list fixes:

    series        k:<key>                  the last key of the previous page
    models        <name>                   the last model name of the previous page
    observations  t:<µs since the epoch>   the last time of the previous page
    jobs          <created µs>:<job id>    the last job of the previous page (newest first)
    keys          a:<name>                 the last key name of the previous page

A client can send any string as a cursor, and none may reach the database unchecked: anything that is not one of
these forms (not base64 of UTF-8, another list's form, a number out of range, a character a key never holds) is
refused with 422 validation_error at query.cursor. An empty cursor means the first page.
"""

import base64
import binascii
import re

from service.api.schemas import KEY_PATTERN
from service.errors import Unprocessable
from service.times.timefmt import MAX_US, MIN_US

__all__ = ["after_api_key", "after_job", "after_key", "after_name", "after_time", "api_key_cursor", "job_cursor",
           "key_cursor", "name_cursor", "time_cursor"]

_BASE64 = re.compile(r"[A-Za-z0-9_-]*")
_KEY = KEY_PATTERN.removeprefix("^").removesuffix("$")
_INT = r"-?[0-9]{1,20}"  # range-checked once matched
_SERIES = re.compile(rf"k:({_KEY})")
_MODELS = re.compile(rf"({_KEY})")
_OBSERVATIONS = re.compile(rf"t:({_INT})")
_API_KEYS = re.compile(rf"a:({_KEY})")
_JOBS = re.compile(rf"({_INT}):([A-Za-z0-9-]{{1,64}})")
_INT64_MAX = 2**63 - 1


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _refuse() -> Unprocessable:
    return Unprocessable.at(["query", "cursor"], "not a cursor this server gave out")


def _decode(cursor: str, form: re.Pattern[str]) -> tuple[str, ...]:
    """The groups of `form` in the cursor's text; Unprocessable (422 at query.cursor) when it is not that form."""
    if not _BASE64.fullmatch(cursor):
        raise _refuse()
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _refuse() from None
    match = form.fullmatch(text)
    if match is None:
        raise _refuse()
    return match.groups()


def _int(text: str, low: int, high: int) -> int:
    value = int(text)
    if not low <= value <= high:
        raise _refuse()
    return value


def key_cursor(key: str) -> str:
    """Series list: the cursor after the series `key`."""
    return _encode(f"k:{key}")


def after_key(cursor: str) -> str:
    return _decode(cursor, _SERIES)[0]


def name_cursor(name: str) -> str:
    """Model list: the cursor after the model `name`."""
    return _encode(name)


def after_name(cursor: str) -> str:
    return _decode(cursor, _MODELS)[0]


def api_key_cursor(name: str) -> str:
    """API key list: the cursor after the key named `name`."""
    return _encode(f"a:{name}")


def after_api_key(cursor: str) -> str:
    return _decode(cursor, _API_KEYS)[0]


def time_cursor(t_us: int) -> str:
    """Observation pages: the cursor after time `t_us` (µs since the epoch)."""
    return _encode(f"t:{t_us}")


def after_time(cursor: str) -> int:
    """The µs time the cursor names, within the times observations may have (years 1000 to 9999)."""
    return _int(_decode(cursor, _OBSERVATIONS)[0], MIN_US, MAX_US)


def job_cursor(created_us: int, job_id: str) -> str:
    """Job list: the cursor after the job (`created_us`, `job_id`)."""
    return _encode(f"{created_us}:{job_id}")


def after_job(cursor: str) -> tuple[int, str]:
    created, job_id = _decode(cursor, _JOBS)
    return _int(created, 0, _INT64_MAX), job_id

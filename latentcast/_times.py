"""Times and durations on their way to the API and back.

Out: an aware datetime (pandas Timestamps included) becomes RFC 3339 UTC text, a number is Unix seconds, a string
goes as written (the server reads RFC 3339 with an offset, or Unix seconds). A naive datetime is refused here, as
the server refuses a time without an offset: which zone it meant cannot be known. In: the API's RFC 3339 UTC text
(six fractional digits) becomes an aware datetime, exact to the microsecond.
"""

import numbers
from datetime import UTC, datetime, timedelta
from typing import Any

Time = datetime | str | int | float
Duration = timedelta | str | int | float


def encode_time(value: Any) -> str | int | float:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"time {value.isoformat()} has no time zone: give an aware datetime "
                             "(e.g. .replace(tzinfo=datetime.UTC)) so it means one instant")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bool) or not isinstance(value, str | numbers.Real):
        raise TypeError(f"a time is a datetime, RFC 3339 text or Unix seconds, not {type(value).__name__}")
    if isinstance(value, str | int | float):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)  # numpy scalars


def encode_duration(value: Duration) -> str:
    """Text the API reads as a duration: ISO 8601 strings as given, numbers and timedeltas as decimal seconds."""
    if isinstance(value, timedelta):
        whole = value.days * 86_400 + value.seconds  # exact: no float on the way
        return f"{whole}.{value.microseconds:06d}"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"a duration is a timedelta, ISO 8601 text or seconds, not {type(value).__name__}")
    return value if isinstance(value, str) else repr(value)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def parse_optional_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)

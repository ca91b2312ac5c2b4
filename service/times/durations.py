"""Durations on the wire (`step`, `horizon`, `context`): seconds as a decimal number, or ISO 8601 (`PT15M`).

Parsed into integer microseconds (`parse_duration`), and written back as ISO 8601 (`format_duration`). Seconds
with digits below the microsecond are rounded to the nearest µs, half to even, as times are (`timefmt.seconds_us`);
at most 6 decimals are kept exactly. Only fixed-length designators are accepted: weeks, days, hours, minutes and
seconds (`P1W`, `P1DT2H`, `PT0.5S`). Years and months (`P1Y`, `P1M`) have no fixed length and are refused, as are
negative durations and those that are, or round to, zero.
"""

import re
from decimal import Decimal, DecimalException

from service.times.timefmt import US_PER_S, seconds_us

# A century: generous for any step or horizon, and far below int64 microseconds.
MAX_US = 100 * 366 * 86_400 * US_PER_S

_SECONDS = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?")
_ISO = re.compile(
    r"P(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?P<T>T(?:(?P<H>\d+)H)?(?:(?P<M>\d+)M)?(?:(?P<S>\d+(?:[.,]\d+)?)S)?)?"
)
_UNIT_US = {"W": 7 * 86_400 * US_PER_S, "D": 86_400 * US_PER_S, "H": 3_600 * US_PER_S, "M": 60 * US_PER_S,
            "S": US_PER_S}


class DurationParseError(ValueError):
    """A duration that is not one of the accepted forms; the message says why."""


def _to_us(whole_us: int, seconds: Decimal, text: str) -> int:
    """whole_us: the W, D, H and M parts in µs; seconds: the S part or the plain number."""
    if whole_us > MAX_US or seconds > MAX_US // US_PER_S + 1:  # rounding needs a bounded number; exact check below
        raise DurationParseError(f"{text[:64]!r} is longer than 100 years")
    us = whole_us + seconds_us(seconds)
    if us <= 0:
        if whole_us or seconds:
            raise DurationParseError(f"{text[:64]!r} rounds to zero: durations are kept to the microsecond, and "
                                     "one must be longer than zero")
        raise DurationParseError(f"{text[:64]!r} is not positive: a duration must be longer than zero")
    if us > MAX_US:
        raise DurationParseError(f"{text[:64]!r} is longer than 100 years")
    return us


def parse_duration(text: str) -> int:
    """Parse a positive duration, `"900"`, `"0.25"`, `"PT15M"` or `"P1DT2H"`, into integer microseconds."""
    if _SECONDS.fullmatch(text):
        try:
            seconds = Decimal(text)
        except DecimalException:  # an exponent beyond what Decimal holds
            raise DurationParseError(f"{text[:64]!r} is out of range") from None
        return _to_us(0, seconds, text)
    m = _ISO.fullmatch(text)
    if m is None or text == "P" or m["T"] == "T":
        if text.startswith("P") and re.search(r"\d[YM]", text.split("T")[0]):
            raise DurationParseError(f"{text[:64]!r}: years and months have no fixed length; use days (P30D)")
        raise DurationParseError(
            f"not a duration: {text[:64]!r}; give seconds (900) or ISO 8601 with W, D, H, M, S (PT15M, P1DT2H)"
        )
    whole_us = 0
    for unit in "WDHM":
        if m[unit] is not None:
            count = Decimal(m[unit])  # compared before int(), which refuses very long digit strings
            if count > MAX_US:
                raise DurationParseError(f"{text[:64]!r} is longer than 100 years")
            whole_us += int(count) * _UNIT_US[unit]
    seconds = Decimal(m["S"].replace(",", ".")) if m["S"] is not None else Decimal(0)
    return _to_us(whole_us, seconds, text)


def format_duration(us: int) -> str:
    """Integer microseconds as ISO 8601 in days, hours, minutes and seconds: 93_784_500_000 -> "P1DT2H3M4.5S".

    `parse_duration` reads the result back to the same microseconds (zero, which it refuses, is "PT0S"). Weeks are
    written as days (7 days, not 1 week: ISO 8601 does not mix W with the other designators).
    """
    if us < 0:
        raise ValueError(f"a duration must not be negative, got {us} µs")
    if us == 0:
        return "PT0S"
    days, rest = divmod(us, _UNIT_US["D"])
    hours, rest = divmod(rest, _UNIT_US["H"])
    minutes, rest = divmod(rest, _UNIT_US["M"])
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if rest:
        time += f"{format_seconds(rest)}S"
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def format_seconds(us: int) -> str:
    """Integer microseconds as decimal seconds without trailing zeros: 59_783_000 -> "59.783", 7 * 10**12 ->
    "7000000" (never an exponent)."""
    return f"{(Decimal(us) / US_PER_S).normalize():f}"

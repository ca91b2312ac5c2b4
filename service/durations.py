"""Durations on the wire (`step`, `horizon`, `context`): seconds as a decimal number, or ISO 8601 (`PT15M`).

Parsed into exact integer microseconds (`parse_duration`), and written back as ISO 8601 (`format_duration`). Only
fixed-length designators are accepted: weeks, days, hours, minutes and seconds (`P1W`, `P1DT2H`, `PT0.5S`). Years
and months (`P1Y`, `P1M`) have no fixed length and are refused, as are negative and zero durations.
"""

import re
from decimal import Decimal, DecimalException

US_PER_S = 1_000_000
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


def _to_us(seconds: Decimal, text: str) -> int:
    us = seconds * US_PER_S
    if us != us.to_integral_value():
        raise DurationParseError(f"{text!r} has more than 6 decimal places of a second: durations are kept to the "
                                 "microsecond")
    if us <= 0:
        raise DurationParseError(f"{text!r} is not positive: a duration must be longer than zero")
    if us > MAX_US:
        raise DurationParseError(f"{text!r} is longer than 100 years")
    return int(us)


def parse_duration(text: str) -> int:
    """Parse a positive duration, `"900"`, `"0.25"`, `"PT15M"` or `"P1DT2H"`, into integer microseconds."""
    if _SECONDS.fullmatch(text):
        try:
            return _to_us(Decimal(text), text)
        except DecimalException:  # an exponent too large for the decimal context
            raise DurationParseError(f"{text[:64]!r} is out of range") from None
    m = _ISO.fullmatch(text)
    if m is None or text == "P" or m["T"] == "T":
        if text.startswith("P") and re.search(r"\d[YM]", text.split("T")[0]):
            raise DurationParseError(f"{text[:64]!r}: years and months have no fixed length; use days (P30D)")
        raise DurationParseError(
            f"not a duration: {text[:64]!r}; give seconds (900) or ISO 8601 with W, D, H, M, S (PT15M, P1DT2H)"
        )
    total = Decimal(0)
    for unit, factor in _UNIT_US.items():
        if m[unit] is not None:
            total += Decimal(m[unit].replace(",", ".")) * factor
    return _to_us(total / US_PER_S, text)


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

"""Many times at once: the ingest path parses up to a million per request, so the common RFC 3339 layouts (up
to 9 fractional digits, those beyond the sixth rounded half to even in integer arithmetic) are read with numpy on
the strings' code points, JSON numbers are rounded by `timefmt.seconds_us` without the scalar parser's checks and
messages, and anything else goes through `timefmt.parse_time` one by one (which also words every error). Both give
the same µs for every input (tests/service/test_timevec.py).
"""

from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from service.times.timefmt import (
    MAX_SECONDS,
    MAX_US,
    MIN_US,
    ROUNDING,
    US_PER_S,
    TimeParseError,
    parse_time,
    seconds_us,
)

_DIGITS = {"year": (0, 4), "month": (5, 2), "day": (8, 2), "hour": (11, 2), "minute": (14, 2), "second": (17, 2)}
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_MAX_FRAC = 9  # nanoseconds (pandas, Go's RFC3339Nano); longer fractions take the scalar path
_MAX_LEN = 19 + 1 + _MAX_FRAC + 6  # date, time, '.', fractional digits, ±hh:mm


def _number(digits: np.ndarray, start: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """digits: (width of text, N) code point - 48, one row per character position (rows are contiguous, which
    makes this a few fast 1-D passes). → (value of positions start..start+width, all-digits mask)."""
    value = np.zeros(digits.shape[1], np.int64)
    ok = np.ones(digits.shape[1], bool)
    for row in digits[start:start + width]:
        ok &= (row >= 0) & (row <= 9)
        value *= 10
        value += row
    return value, ok


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, for years ≥ 1)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + d - 1
    days: np.ndarray = era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468  # numpy: Any here
    return days


def _zone(chars: np.ndarray, digits: np.ndarray, tz: int) -> tuple[np.ndarray, np.ndarray]:
    """(µs east of UTC, ok) of the "±hh:mm" zone at position tz; chars: (position, N) code points, digits: the same
    less 48 (as `_number` reads them)."""
    sign = chars[tz]
    ok = ((sign == ord("+")) | (sign == ord("-"))) & (chars[tz + 3] == ord(":"))
    oh, good_h = _number(digits, tz + 1, 2)
    om, good_m = _number(digits, tz + 4, 2)
    ok &= good_h & good_m & (oh <= 23) & (om <= 59)
    return np.where(sign == ord("+"), 1, -1) * (oh * 60 + om) * 60 * US_PER_S, ok


def _layout(codes: np.ndarray, length: int, has_dot: bool, has_z: bool) -> tuple[np.ndarray, np.ndarray]:
    """Parse rows that all share one layout: (µs, ok). Rows not ok are left to the scalar parser."""
    n = len(codes)
    tz_len = 1 if has_z else 6
    frac_len = length - 19 - tz_len
    if frac_len < 0 or (has_dot and not 2 <= frac_len <= 1 + _MAX_FRAC) or (not has_dot and frac_len != 0):
        return np.zeros(n, np.int64), np.zeros(n, bool)
    ok = np.ones(n, bool)
    chars = np.ascontiguousarray(codes.T)  # (position, N): each position's characters are contiguous
    digits = chars.astype(np.int16) - 48
    for col, allowed in ((4, "-"), (7, "-"), (10, "Tt "), (13, ":"), (16, ":")):
        ok &= np.logical_or.reduce([chars[col] == ord(c) for c in allowed])
    parts = {}
    for name, (start, width) in _DIGITS.items():
        parts[name], good = _number(digits, start, width)
        ok &= good
    y, mo, d = parts["year"], parts["month"], parts["day"]
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(mo, 0, 12)] + ((mo == 2) & leap)
    ok &= (y >= 1000) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= month_days)
    ok &= (parts["hour"] <= 23) & (parts["minute"] <= 59) & (parts["second"] <= 59)
    seconds = (_days_from_civil(y, mo, d) * 86_400 + parts["hour"] * 3600 + parts["minute"] * 60
               + parts["second"])
    us = seconds * US_PER_S
    if has_dot:
        n_digits = frac_len - 1
        frac, good = _number(digits, 20, n_digits)
        ok &= good
        if n_digits <= 6:
            us += frac * 10 ** (6 - n_digits)
        else:  # to the nearest µs, half to even (whole seconds are an even number of µs: the fraction decides)
            frac_us, rest = np.divmod(frac, 10 ** (n_digits - 6))
            half = 5 * 10 ** (n_digits - 7)
            us += frac_us + ((rest > half) | ((rest == half) & (frac_us % 2 == 1)))
    if not has_z:
        shift, good = _zone(chars, digits, 19 + frac_len)
        ok &= good
        us -= shift
    ok &= (us >= MIN_US) & (us <= MAX_US)
    return us, ok


_CHECK_ROWS = 4096  # rows checked against a layout at a time, the template repeated as often (~100 kB)


def _template(head: int) -> tuple[np.ndarray, np.ndarray]:
    """(lo, span), each repeated for _CHECK_ROWS rows: a character c at position i of "YYYY-MM-DDTHH:MM:SS[.f…]"
    (`head` long) fits the layout when c - lo[i] ≤ span[i] in uint8 (below lo wraps round past span): a digit
    where the layout has one (the year's first not 0: years from 1000), the separator itself elsewhere. Compared
    over flat rows, which numpy does many times faster than broadcasting a row of `head` over an (N, head) array."""
    pattern = "d" * 4 + "-dd-ddTdd:dd:dd" + ("." + "d" * (head - 20) if head > 19 else "")
    lo = np.array([ord("0") if c == "d" else ord(c) for c in pattern], np.uint8)
    lo[0] = ord("1")
    span = np.array([9 if c == "d" else 0 for c in pattern], np.uint8)
    span[0] = 8
    return np.tile(lo, _CHECK_ROWS), np.tile(span, _CHECK_ROWS)


_TEMPLATES = {head: _template(head) for head in (19, *range(21, 27))}  # no fraction, or 1 to 6 digits


def _fits(rows: np.ndarray, head: int) -> bool:
    """Whether every row of contiguous (N, head) codes fits _TEMPLATES[head]."""
    lo, span = _TEMPLATES[head]
    flat = rows.ravel()
    for start in range(0, len(flat), len(lo)):
        chunk = flat[start:start + len(lo)]
        if not (chunk - lo[:len(chunk)] <= span[:len(chunk)]).all():
            return False
    return True


def _layout_numpy(codes: np.ndarray, length: int, has_dot: bool, has_z: bool) -> np.ndarray | None:
    """µs of rows that all share one of the common layouts ('T', at most 6 fractional digits, 'Z' or an offset),
    read by numpy's ISO 8601 parser once every character is checked against the layout; None when any row is not
    a valid time of that layout, or the layout is another (then `_layout`, the plain version and this one's test
    oracle, answers row by row). Only "T" between date and time: "t" and " " take `_layout`. numpy checks the
    ranges of month, day (leap years included), hour, minute and second itself, and raises for any out of range."""
    tz_len = 1 if has_z else 6
    head = length - tz_len
    if head not in _TEMPLATES or has_dot != (head > 19):
        return None
    part = np.ascontiguousarray(codes[:, :head])
    if not _fits(part, head):
        return None
    try:
        us: np.ndarray = part.view(f"S{head}").ravel().astype("M8[us]").view(np.int64)
    except ValueError:  # a field out of range
        return None
    if not has_z:
        chars = np.ascontiguousarray(codes[:, head:].T)  # (position, N), as _zone reads them
        shift, ok = _zone(chars, chars.astype(np.int16) - 48, 0)
        if not ok.all():
            return None
        us -= shift
    if not ((us >= MIN_US) & (us <= MAX_US)).all():
        return None
    return us


def _vector_rfc3339(strings: Sequence[str], joined: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(µs, ok) of RFC 3339 strings; `joined`: "".join(strings) when the caller has it."""
    n = len(strings)
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=n)
    us, ok = np.zeros(n, np.int64), np.zeros(n, bool)
    short = np.flatnonzero(lengths <= _MAX_LEN)  # longer strings are left to the scalar parser
    if short.size == 0:
        return us, ok
    if short.size < n:
        strings, lengths, joined = [strings[i] for i in short.tolist()], lengths[short], None
    try:
        codes = _codes(strings, lengths, joined)  # ASCII bytes; every valid time is ASCII
    except UnicodeEncodeError:
        return us, ok
    us[short], ok[short] = _by_layout(codes, lengths)
    return us, ok


def _by_layout(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(µs, ok) of rows of ASCII codes (N, width ≥ each length), each read in the layout its length, its last
    character and its 20th tell."""
    n = len(codes)
    # In the padded layout numpy drops trailing NULs; such a string then has NUL where its layout wants 'Z' or a
    # digit, and fails.
    width = int(lengths[0]) if n else 0
    one_width = width > 0 and bool((lengths == width).all())
    last = codes[:, width - 1] if one_width else codes[np.arange(n), np.maximum(lengths - 1, 0)]
    has_z = (last == ord("Z")) | (last == ord("z"))
    has_dot = codes[:, 19] == ord(".") if codes.shape[1] > 19 else np.zeros(n, bool)
    key = lengths * 4 + has_dot * 2 + has_z
    if (key == key[0]).all():  # the usual body: one layout throughout
        layout = int(key[0] // 4), bool(key[0] & 2), bool(key[0] & 1)
        us = _layout_numpy(codes, *layout)
        return (us, np.ones(n, bool)) if us is not None else _layout(codes, *layout)
    us, ok = np.zeros(n, np.int64), np.zeros(n, bool)
    for k in np.unique(key):
        rows = np.flatnonzero(key == k)
        us[rows], ok[rows] = _layout(codes[rows], int(k // 4), bool(k & 2), bool(k & 1))
    return us, ok


def parse_json_strings(raw: bytes, n: int) -> np.ndarray | None:
    """(n,) µs of a JSON array of n RFC 3339 strings of one length, separated by "," or ", " (`["…","…"]`), read
    straight from the array's text; None for any other text, and when any string is not a valid time (then
    `parse_times` on the decoded list answers, and says which). Gives what `parse_times` gives whenever it gives
    an array (tests/service/test_timevec.py).

    Why the text can be read in place: a JSON string without a backslash ends at its next quote, so when the text
    is n rows (the separator added after the last) of a quote, `width` bytes without one, a quote and the separator,
    the rows are the array's strings, each `width` characters long. A text with a backslash is refused. Whether a
    row holds a quote is left to the layout's check, which accepts only digits, separators and a zone there."""
    if n < 1 or not raw.startswith(b'["') or not raw.endswith(b'"]') or b"\\" in raw:
        return None
    width = raw.find(b'"', 2, 3 + _MAX_LEN) - 2
    sep = b", " if raw[width + 4:width + 5] == b" " else b","
    stride = width + 2 + len(sep)
    if not 19 <= width <= _MAX_LEN or len(raw) != n * stride - len(sep) + 2:
        return None
    rows = np.frombuffer(raw[1:-1] + sep, dtype=np.uint8).reshape(n, stride)
    codes = rows[:, 1:width + 1]
    if not ((rows[:, 0] == ord('"')).all() and (rows[:, width + 1] == ord('"')).all()
            and all((rows[:, width + 2 + i] == c).all() for i, c in enumerate(sep))):
        return None
    us, ok = _by_layout(codes, np.full(n, width))
    return us if ok.all() else None


def _codes(strings: Sequence[str], lengths: np.ndarray, joined: str | None = None) -> np.ndarray:
    """(N, width) uint8: each string's bytes, one row each. Strings of one length are joined (`joined`, when given,
    is that join) and viewed in place (no padding); otherwise they are padded with NULs to _MAX_LEN. Raises
    UnicodeEncodeError for non-ASCII."""
    width = int(lengths[0])
    if width > 0 and (lengths == width).all():
        data = (joined if joined is not None else "".join(strings)).encode("ascii")
        return np.frombuffer(data, dtype=np.uint8).reshape(len(strings), width)
    return np.array(strings, dtype=f"S{_MAX_LEN}").view(np.uint8).reshape(len(strings), _MAX_LEN)


def _decimal_us(x: object) -> int | None:
    """The µs of Unix seconds given as a JSON number, rounded as `seconds_us` rounds, or None (the scalar path then
    says why). Most numbers are whole µs, found by scaling alone, which is cheaper than rounding. The scaling
    rounds beyond 28 digits, but an in-range number has at most 18 before the point: when it comes out whole, the
    number lies within 1e-10 µs of it, so that whole is also the nearest µs."""
    if type(x) is Decimal and x.is_finite() and -MAX_SECONDS < x < MAX_SECONDS:
        scaled = x.scaleb(6, ROUNDING)
        us = int(scaled)
        if us != scaled:
            us = seconds_us(x)
        if MIN_US <= us <= MAX_US:
            return us
    elif type(x) is int and MIN_US <= x * US_PER_S <= MAX_US:
        return x * US_PER_S
    return None


def parse_times(values: Sequence[object], *, text: bool = False) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Parse a list of times in either form. Returns (N,) int64 µs and (index, reason) for each bad one.

    text=True: the values are CSV cells, where Unix seconds arrive as text ("1772366460.5").
    """
    n = len(values)
    try:
        joined: str | None = "".join(values)  # type: ignore[arg-type]  # raises TypeError unless all are strings
    except TypeError:
        joined = None
    if joined is not None:
        us, ok = _vector_rfc3339(values, joined)  # type: ignore[arg-type]
    elif set(map(type, values)) <= {Decimal, int}:
        parsed = [_decimal_us(x) for x in values]
        ok = np.fromiter((p is not None for p in parsed), dtype=bool, count=n)
        us = np.fromiter((p or 0 for p in parsed), dtype=np.int64, count=n)
    else:
        us, ok = np.zeros(n, np.int64), np.zeros(n, bool)
    errors = []
    for i in np.flatnonzero(~ok).tolist():
        try:
            us[i] = parse_time(values[i], in_query=text)
        except TimeParseError as exc:
            errors.append((i, str(exc)))
    return us, errors

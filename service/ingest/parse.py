"""Observation request bodies → one validated batch of (channel, t, value), or a 422 naming every bad field.

Three forms (see the README): rows JSON, columns JSON, and text/csv. A well-formed JSON body is read by the fast path
(`fastjson.decode_fast`, msgspec), which gives exactly what this module would; every other body, and so every error,
is read here, the plain way, which the fast path's tests hold it to. JSON is decoded here from the raw bytes:
numbers keep their decimal text (`Decimal`) so numeric times are exact, the `NaN`/`Infinity` literals some encoders
write become a marker that is refused where it stands, and an object with a repeated key is refused. Values must be
JSON numbers (not strings, not booleans), finite and at most MAX_ABS_VALUE in magnitude; null means "not observed".

Locations in errors are zero-based paths into the body (`["body", "observations", 3, "t"]`); for CSV
`["body", "line", <1-based line>, "<column>"]`.
"""

import bisect
import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from service.errors import Unprocessable, invalid_json
from service.ingest.fastjson import decode_fast
from service.times.timefmt import format_time, is_rounded
from service.times.timevec import parse_times

MAX_DETAILS = 50  # a body full of mistakes gets the first 50, not a 100,000-line error
# The largest magnitude a value may have. Squares of values (variances, scales, losses) and sums of billions of them
# stay finite in float64 under it; at 1e308 a model's normalisation overflows and its forecasts are infinite.
MAX_ABS_VALUE = 1e100
VALUE_RANGE = "from -1e100 to 1e100"  # MAX_ABS_VALUE, as messages say it
_RANGE = f"values must be finite, {VALUE_RANGE}"
_CSV_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class _NonFinite:
    """A bare NaN / Infinity / -Infinity literal, kept as a marker so the error can say where it was."""

    def __init__(self, text: str):
        self.text = text


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _DuplicateKey(f"key {dup!r} appears twice in one JSON object")
    return obj


def decode_json(body: bytes) -> Any:
    """Strict JSON: Decimal for non-integers, NaN/Infinity as markers, no repeated keys. Errors → 422 at body."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_NonFinite, object_pairs_hook=_object)
    except _DuplicateKey as exc:
        raise Unprocessable.at(["body"], str(exc)) from None
    except (ValueError, RecursionError) as exc:  # malformed, not UTF-8, a 5000-digit number, nested too deeply
        raise invalid_json(exc) from None
    except InvalidOperation:  # Decimal() past its exponent limit
        raise Unprocessable.at(["body"], "invalid JSON: a number in the body is too large to read: an exponent may "
                                         "have at most 18 digits") from None


@dataclass
class Batch:
    """Validated values. ch (N,) channel index, t (N,) int64 µs, v (N,) float64; src (N,) the row/line each came
    from, for error messages. (ch, t) may repeat until `merge_duplicates`. given_t(src): the time of that row/line
    as the body wrote it (for error messages too: two times may round to the same µs)."""

    ch: np.ndarray
    t: np.ndarray
    v: np.ndarray
    src: np.ndarray
    given_t: Callable[[int], object]


class _Errors:
    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []

    def add(self, loc: list[str | int], msg: str) -> None:
        if len(self.details) < MAX_DETAILS:
            self.details.append({"loc": loc, "msg": msg})

    def raise_any(self) -> None:
        if self.details:
            first = self.details[0]
            more = f" (and {len(self.details) - 1} more)" if len(self.details) > 1 else ""
            raise Unprocessable(f"{'.'.join(map(str, first['loc']))}: {first['msg']}{more}", details=self.details)


def _short(x: object) -> str:
    """A number or string from the body for a message, cut to 40 characters (a number may have thousands)."""
    text = repr(x) if isinstance(x, str) else str(x)
    return text if len(text) <= 40 else text[:37] + "..."


def _value_error(x: Any) -> str:
    """Why `x` is not an acceptable measurement (it is known not to be a finite number or null)."""
    if isinstance(x, _NonFinite):
        return f"{x.text} is not allowed: values must be finite numbers"
    if isinstance(x, bool):
        return "must be a number, not a boolean"
    if isinstance(x, int | Decimal):
        return f"{_short(x)} is out of range: {_RANGE}"
    return f"must be a JSON number or null, not {type(x).__name__ if x is not None else 'null'}"


def _float(x: Any) -> float | None:
    """A float within ±MAX_ABS_VALUE from a JSON number, None for anything else (the caller reports it)."""
    if type(x) is Decimal or type(x) is int:
        try:
            f = float(x)
        except OverflowError:
            return None
        return f if abs(f) <= MAX_ABS_VALUE else None
    return None


def _check_keys(doc: Any, allowed: set[str], loc: list[str | int], errors: _Errors) -> bool:
    if not isinstance(doc, dict):
        errors.add(loc, f"must be a JSON object, not {type(doc).__name__}")
        return False
    for k in doc.keys() - allowed:
        errors.add([*loc, k], f"unexpected field; allowed: {', '.join(sorted(allowed))}")
    return True


def _rows(doc: dict[str, Any], index: dict[str, int], errors: _Errors) -> Batch:
    obs = doc["observations"]
    if not isinstance(obs, list):
        errors.add(["body", "observations"], "must be a list of {\"t\", \"values\"} objects")
        errors.raise_any()
    ch: list[int] = []
    vs: list[float] = []
    src: list[int] = []
    raw_t: list[Any] = [0] * len(obs)
    for i, row in enumerate(obs):
        loc: list[str | int] = ["body", "observations", i]
        if not _check_keys(row, {"t", "values"}, loc, errors):
            continue
        if "t" not in row:
            errors.add([*loc, "t"], "field required")
            continue
        raw_t[i] = row["t"]
        values = row.get("values")
        if not isinstance(values, dict):
            errors.add([*loc, "values"], "must be an object of channel name to number")
            continue
        for name, x in values.items():
            c = index.get(name)
            if c is None:
                errors.add([*loc, "values", name], f"unknown channel; the series has {', '.join(index)}")
                continue
            if x is None:
                continue
            f = _float(x)
            if f is None:
                errors.add([*loc, "values", name], _value_error(x))
                continue
            ch.append(c)
            vs.append(f)
            src.append(i)
        if all(x is None for x in values.values()):
            errors.add([*loc, "values"], "a row needs at least one non-null value")
    us, bad = parse_times(raw_t)
    for i, reason in bad:
        errors.add(["body", "observations", i, "t"], reason)
    errors.raise_any()
    rows = np.array(src, dtype=np.int64)
    return Batch(np.array(ch, dtype=np.int64), us[rows], np.array(vs, dtype=np.float64), rows, raw_t.__getitem__)


def _columns(doc: dict[str, Any], index: dict[str, int], errors: _Errors) -> Batch:
    times, values = doc.get("t"), doc.get("values")
    if not isinstance(times, list):
        errors.add(["body", "t"], "must be a list of times")
    if not isinstance(values, dict):
        errors.add(["body", "values"], "must be an object of channel name to a list of numbers")
    errors.raise_any()
    assert isinstance(times, list) and isinstance(values, dict)  # raise_any raised otherwise
    n = len(times)
    t, bad = parse_times(times)
    for i, reason in bad:
        errors.add(["body", "t", i], reason)
    parts: list[tuple[int, np.ndarray]] = []
    for name, col in values.items():
        loc: list[str | int] = ["body", "values", name]
        if name not in index:
            errors.add(loc, f"unknown channel; the series has {', '.join(index)}")
        elif not isinstance(col, list) or len(col) != n:
            errors.add(loc, f"must be a list as long as t ({n})")
        elif (types := set(map(type, col))) <= {Decimal, int, type(None)}:
            try:
                if type(None) in types:
                    arr = np.array(col, dtype=np.float64)  # None → NaN (not observed); JSON numbers never are
                else:
                    arr = np.fromiter(map(float, col), dtype=np.float64, count=n)  # the faster conversion
            except OverflowError:  # an integer beyond float64: mark it infinite, refused just below
                arr = np.array([np.nan if x is None else _float(x) for x in col], dtype=np.float64)
                arr[np.array([x is not None for x in col]) & np.isnan(arr)] = np.inf
            for k in np.flatnonzero(np.abs(arr) > MAX_ABS_VALUE):  # NaN (null) compares False
                errors.add([*loc, int(k)], _value_error(col[k]))
            parts.append((index[name], arr))
        else:
            for i, x in enumerate(col):
                if x is not None and _float(x) is None:
                    errors.add([*loc, i], _value_error(x))
    errors.raise_any()
    ch, ts, vs, src = [], [], [], []
    for c, arr in parts:
        rows = np.flatnonzero(~np.isnan(arr))
        ch.append(np.full(len(rows), c, dtype=np.int64))
        ts.append(t[rows])
        vs.append(arr[rows])
        src.append(rows)
    if not parts:
        return Batch(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64),
                     np.empty(0, dtype=np.int64), times.__getitem__)
    return Batch(np.concatenate(ch), np.concatenate(ts), np.concatenate(vs), np.concatenate(src), times.__getitem__)


def _csv(body: bytes, index: dict[str, int], errors: _Errors) -> Batch:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable.at(["body"], f"CSV must be UTF-8: {exc}") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or header[0] != "t":
            raise Unprocessable.at(["body", "line", 1, "t"], "the header must start with the column t")
        cols: list[int] = []
        for name in header[1:]:
            if name not in index:
                errors.add(["body", "line", 1, name], f"unknown channel; the series has {', '.join(index)}")
            elif index[name] in cols:
                errors.add(["body", "line", 1, name], "column given twice")
            else:
                cols.append(index[name])
        errors.raise_any()
        ch: list[int] = []
        vs: list[float] = []
        pos: list[int] = []  # index into raw_t / lines of each value
        raw_t: list[str] = []
        lines: list[int] = []
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                errors.add(["body", "line", line], f"{len(row)} fields, the header has {len(header)}")
                continue
            raw_t.append(row[0])
            lines.append(line)
            for c, name, cell in zip(cols, header[1:], row[1:], strict=True):
                if cell == "":
                    continue
                f = float(cell) if _CSV_NUMBER.fullmatch(cell) else None
                if f is None:
                    errors.add(["body", "line", line, name], f"{cell[:40]!r} is not a finite number")
                    continue
                if not abs(f) <= MAX_ABS_VALUE:
                    errors.add(["body", "line", line, name], f"{cell[:40]!r} is out of range: {_RANGE}")
                    continue
                ch.append(c)
                vs.append(f)
                pos.append(len(raw_t) - 1)
            if all(cell == "" for cell in row[1:]):
                errors.add(["body", "line", line], "a line needs at least one value")
    except csv.Error as exc:
        raise Unprocessable.at(["body", "line", reader.line_num], f"malformed CSV: {exc}") from None
    us, bad = parse_times(raw_t, text=True)  # the time's text: RFC 3339, or Unix seconds
    for i, reason in bad:
        errors.add(["body", "line", lines[i], "t"], reason)
    errors.raise_any()
    at = np.array(pos, dtype=np.int64)
    return Batch(np.array(ch, dtype=np.int64), us[at], np.array(vs, dtype=np.float64),
                 np.array(lines, dtype=np.int64)[at], lambda line: raw_t[bisect.bisect_left(lines, line)])


def _merge_duplicates(batch: Batch, channels: Sequence[str], loc_of: Callable[[int, str], list[str | int]],
                      errors: _Errors, *, text_times: bool) -> Batch:
    """Keep one of each identical (channel, t, value); the same (channel, t) with two values is a 422, also when
    the two times differ only below the microsecond (both round to it); the message then shows both."""
    order = np.lexsort((batch.t, batch.ch))  # stable: equal keys stay in body order
    ch, t, v, src = batch.ch[order], batch.t[order], batch.v[order], batch.src[order]
    same = (ch[1:] == ch[:-1]) & (t[1:] == t[:-1])
    for k in np.flatnonzero(same & (v[1:] != v[:-1])):
        name = channels[int(ch[k])]
        first = ".".join(map(str, loc_of(int(src[k]), name)))
        msg = (f"channel {name!r} at {format_time(int(t[k]))} is given twice with different values: "
               f"{float(v[k + 1])!r} here, {float(v[k])!r} at {first}")
        given = [batch.given_t(int(src[j])) for j in (k + 1, k)]
        if any(is_rounded(g, in_query=text_times) for g in given):
            msg += (f" (times {_short(given[0])} and {_short(given[1])} both round to that microsecond: times are "
                    "kept to the microsecond, rounded half to even)")
        errors.add(loc_of(int(src[k + 1]), name), msg)
    errors.raise_any()
    keep = np.r_[True, ~same]
    return Batch(ch[keep], t[keep], v[keep], src[keep], batch.given_t)


def _row_loc(i: int, name: str) -> list[str | int]:
    return ["body", "observations", i, "values", name]


def _column_loc(i: int, name: str) -> list[str | int]:
    return ["body", "values", name, i]


def parse_observations(body: bytes, content_type: str, channels: Sequence[str], max_values: int) -> Batch:
    """Validate a request body against the series' channels; returns the batch with duplicates merged.

    content_type: the media type alone ("application/json" or "text/csv"). Raises Unprocessable (422) listing
    the bad fields; nothing is written by then.
    """
    if content_type != "text/csv":
        fast = decode_fast(body, channels, MAX_ABS_VALUE)
        if fast is None:
            return parse_observation_document(decode_json(body), channels, max_values)
        loc_of = _row_loc if fast.form == "rows" else _column_loc
        batch = Batch(fast.ch, fast.t, fast.v, fast.src, fast.given_t)
        return _finish(batch, channels, max_values, loc_of, _Errors(), text_times=False)
    index = {name: i for i, name in enumerate(channels)}
    errors = _Errors()
    batch = _csv(body, index, errors)
    return _finish(batch, channels, max_values, lambda line, name: ["body", "line", line, name], errors,
                   text_times=True)


def parse_observation_document(doc: Any, channels: Sequence[str], max_values: int) -> Batch:
    """The JSON forms once decoded (by `decode_json`): rows {"observations": [...]} or columns {"t", "values"}.

    Error locations are paths from the body's root, as in `parse_observations`."""
    index = {name: i for i, name in enumerate(channels)}
    errors = _Errors()
    loc_of: Callable[[int, str], list[str | int]]
    if _check_keys(doc, {"observations", "t", "values"}, ["body"], errors) and "observations" in doc:
        if doc.keys() & {"t", "values"}:
            errors.add(["body"], "give either rows {\"observations\"} or columns {\"t\", \"values\"}, not both")
        errors.raise_any()
        batch = _rows(doc, index, errors)
        loc_of = _row_loc
    else:
        if isinstance(doc, dict) and not doc.keys() & {"t", "values"}:
            errors.add(["body"], "expected rows {\"observations\": [...]} or columns {\"t\": [...], \"values\": {...}}")
        errors.raise_any()
        batch = _columns(doc, index, errors)
        loc_of = _column_loc
    return _finish(batch, channels, max_values, loc_of, errors, text_times=False)


def _finish(batch: Batch, channels: Sequence[str], max_values: int,
            loc_of: Callable[[int, str], list[str | int]], errors: _Errors, *, text_times: bool) -> Batch:
    if len(batch.v) > max_values:
        raise Unprocessable.at(["body"], f"{len(batch.v)} values in one request; the limit is {max_values}")
    if batch.t.size == 0:  # an empty list of rows: nothing to merge
        return batch
    return _merge_duplicates(batch, channels, loc_of, errors, text_times=text_times)

"""The fast path for well-formed JSON observation bodies: msgspec decodes them straight into typed fields.

`parse.py` holds the plain parser (the standard library's json with exact `Decimal` numbers, then a check of every
field); it is this module's oracle and answers every body this module declines. `fast_batch` either returns the very
Batch the plain parser would return (the same arrays in the same order; tests/service/test_fastjson.py compares them
on many bodies), or None, and then the plain parser runs on the same bytes and words the error. So there is one
parser of record, and the fast path never words an error of its own.

How it differs from the plain parser, and why the results agree:

- Values are decoded as float64 by msgspec, correctly rounded from their decimal text, as `float(Decimal(text))` is.
  A value beyond ±MAX_ABS_VALUE, a boolean, a string or a NaN literal: declined.
- Times keep their text: msgspec's `float_hook=Decimal` gives a JSON number with a fraction or exponent as a
  `Decimal` of its text, an integer as an int, a string as str: what json.loads(parse_float=Decimal) gives. The
  columns form's `t` is kept as its JSON text: the usual array, strings of one RFC 3339 layout, is read in place
  (`timevec.parse_json_strings`, tested against the list parser), and any other is decoded to a list first.
- msgspec keeps the last of a repeated key where the plain parser refuses the body. A body with no backslash (no
  escape in any string) is checked instead: each key of each object is followed by exactly one structural colon, so
  the body's colons are the decoded objects' keys plus the colons inside decoded strings exactly when no object
  repeats a key (a repeated key's colon is counted in the body but not in the decoded objects). A body with a
  backslash is declined.
- Any other irregularity (an unknown channel, a bad time, a column of the wrong length, a row without values):
  declined.
"""

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
import numpy as np

from service.times.timevec import parse_json_strings, parse_times

_Value = float | None


class _Row(msgspec.Struct, forbid_unknown_fields=True):
    t: Any
    values: dict[str, _Value]


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    """Both forms in one type, so one pass decodes either; which fields came tells the form."""

    observations: list[_Row] | msgspec.UnsetType = msgspec.UNSET
    t: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # its text: the usual list is read in place
    values: dict[str, list[_Value]] | msgspec.UnsetType = msgspec.UNSET


_DECODER = msgspec.json.Decoder(_Body, float_hook=Decimal)
_TIMES = msgspec.json.Decoder(list[Any], float_hook=Decimal)


class Decoded(NamedTuple):
    """A body's values before duplicates are merged: ch, t, v, src as in `parse.Batch`; given_t: the time of a
    row as the body wrote it (`given_t(src[i])`, for messages); form: "rows" or "columns"."""

    ch: np.ndarray
    t: np.ndarray
    v: np.ndarray
    src: np.ndarray
    given_t: Callable[[int], Any]
    form: str


def _colons(data: bytes) -> int:
    """Colons in `data`: numpy compares and counts 5x faster than bytes.count does for one byte."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == ord(":")))


def _colons_in(strings: list[Any]) -> int:
    """Colons inside the strings among `strings` (times); other items hold none."""
    try:
        return "".join(strings).count(":")  # the usual body: every time a string (a third of the filtered join's cost)
    except TypeError:  # some times are numbers
        return "".join(s for s in strings if type(s) is str).count(":")


def _times(raw: list[Any]) -> np.ndarray | None:
    """(N,) int64 µs, or None when any time is not valid (the plain parser then says which and why)."""
    us, bad = parse_times(raw)
    return None if bad else us


_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # ch, t, v, src


def _columns(us: np.ndarray, values: dict[str, list[_Value]], index: dict[str, int], max_abs: float
             ) -> _Arrays | None:
    n = len(us)
    if any(name not in index or len(col) != n for name, col in values.items()):
        return None
    ch, ts, vs, src = [], [], [], []
    for name, col in values.items():
        arr = np.array(col, dtype=np.float64)  # None → NaN: not observed
        if (np.abs(arr) > max_abs).any():  # NaN (null) compares False
            return None
        rows = np.flatnonzero(~np.isnan(arr))
        ch.append(np.full(len(rows), index[name], dtype=np.int64))
        ts.append(us[rows])
        vs.append(arr[rows])
        src.append(rows)
    if not ch:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float64), empty
    return np.concatenate(ch), np.concatenate(ts), np.concatenate(vs), np.concatenate(src)


def _column_times(raw: bytes, values: dict[str, list[_Value]]) -> tuple[np.ndarray, Callable[[int], Any]] | None:
    """The columns form's times (µs) from the text of its `t` array, and the time of a row as written; None when
    the array is not one of valid times. The usual array (strings of one layout, "," or ", " between them) is read
    in place, with no string made of each time, and the times as written are decoded only when a message needs one."""
    n = len(next(iter(values.values()))) if values else 0
    us = parse_json_strings(raw, n)
    if us is not None:
        decoded: list[Any] = []

        def given_t(i: int) -> Any:
            if not decoded:
                decoded.extend(_TIMES.decode(raw))
            return decoded[i]

        return us, given_t
    try:
        times = _TIMES.decode(raw)
    except (msgspec.MsgspecError, ArithmeticError, ValueError):  # not a list, a number Decimal cannot hold
        return None
    us = _times(times)
    return None if us is None else (us, times.__getitem__)


def _rows(obs: list[_Row], index: dict[str, int], max_abs: float) -> _Arrays | None:
    ch: list[int] = []
    vs: list[float] = []
    src: list[int] = []
    for i, row in enumerate(obs):
        k = len(vs)
        for name, x in row.values.items():
            c = index.get(name)
            if c is None:
                return None
            if x is not None:
                ch.append(c)
                vs.append(x)
                src.append(i)
        if len(vs) == k:  # a row needs at least one non-null value
            return None
    us = _times([row.t for row in obs])
    v = np.array(vs, dtype=np.float64)
    if us is None or (np.abs(v) > max_abs).any():
        return None
    rows = np.array(src, dtype=np.int64)
    return np.array(ch, dtype=np.int64), us[rows], v, rows


def decode_fast(body: bytes, channels: Sequence[str], max_abs: float) -> Decoded | None:
    """A well-formed rows or columns JSON body, its values within ±max_abs, → its values; None for any other body
    (the plain parser reads it and words what is wrong)."""
    if b"\\" in body:
        return None
    try:
        doc = _DECODER.decode(body)
    except (msgspec.MsgspecError, ArithmeticError, ValueError):  # malformed JSON, a wrong type, an unknown field,
        return None  # a number Decimal cannot hold
    index = {name: i for i, name in enumerate(channels)}
    given_t: Callable[[int], Any]
    if isinstance(doc.observations, list) and doc.t is msgspec.UNSET and doc.values is msgspec.UNSET:
        times = [row.t for row in doc.observations]
        keys = 1 + sum(2 + len(row.values) for row in doc.observations)
        if _colons(body) != keys + _colons_in(times):
            return None
        got = _rows(doc.observations, index, max_abs)
        given_t = times.__getitem__
        form = "rows"
    elif isinstance(doc.t, msgspec.Raw) and isinstance(doc.values, dict) and doc.observations is msgspec.UNSET:
        raw = bytes(doc.t)
        # an array holds no colon outside its strings (an object in it is not a time: declined below)
        if _colons(body) != 2 + len(doc.values) + _colons(raw):
            return None
        column_times = _column_times(raw, doc.values)
        if column_times is None:
            return None
        us, given_t = column_times
        got = _columns(us, doc.values, index, max_abs)
        form = "columns"
    else:
        return None
    return None if got is None else Decoded(*got, given_t=given_t, form=form)

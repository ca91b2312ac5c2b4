"""The msgspec fast path (service.ingest.fastjson) against the plain parser, its oracle: on a well-formed body both
give the same batch, bit for bit; on any other body the fast path declines and the answer is the plain parser's."""

import json
import random
from decimal import Decimal

import numpy as np
import pytest

from service.errors import Unprocessable
from service.ingest import decode_json, parse_observation_document, parse_observations
from service.ingest.fastjson import decode_fast
from service.ingest.parse import MAX_ABS_VALUE

CHANNELS = ["temp", "hum", "a.b-c_1"]
MAX_VALUES = 1_000_000


def _plain(body: bytes) -> object:
    try:
        return parse_observation_document(decode_json(body), CHANNELS, MAX_VALUES)
    except Unprocessable as exc:
        return exc


def _served(body: bytes) -> object:
    try:
        return parse_observations(body, "application/json", CHANNELS, MAX_VALUES)
    except Unprocessable as exc:
        return exc


def _same(got: object, want: object) -> None:
    if isinstance(want, Unprocessable):
        assert isinstance(got, Unprocessable), got
        assert (got.message, got.details) == (want.message, want.details)
        return
    assert not isinstance(got, Unprocessable), got.details
    for name in ("ch", "t", "src"):
        assert getattr(got, name).dtype == np.int64
        assert getattr(got, name).tolist() == getattr(want, name).tolist(), name
    assert got.v.dtype == np.float64 and got.v.view(np.int64).tolist() == want.v.view(np.int64).tolist()  # -0.0
    for i in want.src.tolist():
        a, b = got.given_t(i), want.given_t(i)
        assert (type(a), a) == (type(b), b)


def _time(rng: random.Random) -> object:
    kind = rng.random()
    if kind < 0.15:
        return rng.randint(-30_610_224_000, 253_402_300_799)  # whole Unix seconds, years 1000 to 9999
    if kind < 0.3:  # Unix seconds with up to 12 decimals: the decimal text decides, not a float
        return Decimal(f"{rng.randint(-30_610_224_000, 253_402_300_798)}.{rng.randint(0, 10**12):012d}"
                       [:rng.randint(12, 25)])
    year = rng.choice([1000, 1600, 1900, 1969, 1970, 2000, 2024, 2026, 9999, rng.randint(1000, 9999)])
    month = rng.randint(1, 12)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    text = (f"{year:04d}-{month:02d}-{rng.randint(1, days):02d}{rng.choice('TTTt ')}"
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")
    digits = rng.choice([0, 0, 1, 3, 6, 6, 7, 9, 12])
    if digits:
        frac = "".join(rng.choice("0123456789") for _ in range(digits))
        if digits > 6 and rng.random() < 0.3:
            frac = frac[:6] + "5" + "0" * (digits - 7)  # a tie: exactly half a microsecond
        text += "." + frac
    if year == 9999 or year == 1000:
        return text + "Z"  # an offset could push it out of range: that is the plain parser's case
    return text + rng.choice(["Z", "z", "+00:00", "-00:00", "+05:30", "-11:00", "+23:59"])


def _value(rng: random.Random) -> object:
    kind = rng.random()
    if kind < 0.1:
        return None
    if kind < 0.4:
        return rng.normalvariate(20, 5)
    if kind < 0.5:
        return rng.randint(-(2**70), 2**70)  # beyond int64 and float64's 53 bits
    if kind < 0.6:
        return rng.choice([0, -0.0, 0.0, 1e100, -1e100, 5e-324, 2.2250738585072014e-308, 1e-300, 123456789])
    mantissa = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30)))
    exponent = rng.randint(-320, 80)
    return Decimal(f"{rng.choice('-+')}{mantissa[0]}.{mantissa[1:] or '0'}e{exponent}")  # 30 digits: rounded once


def _dumps(doc: object) -> bytes:
    """JSON with Decimals written as their own text (json.dumps would refuse them)."""
    return json.dumps(doc, default=lambda d: f"@{d}@").replace('"@', "").replace('@"', "").encode()


def _columns_body(rng: random.Random, n: int) -> bytes:
    names = rng.sample(CHANNELS, rng.randint(0, len(CHANNELS)))
    return _dumps({"t": [_time(rng) for _ in range(n)], "values": {c: [_value(rng) for _ in range(n)] for c in names}})


def _rows_body(rng: random.Random, n: int) -> bytes:
    rows = []
    for _ in range(n):
        values = {c: _value(rng) for c in rng.sample(CHANNELS, rng.randint(1, len(CHANNELS)))}
        values[rng.choice(list(values))] = rng.normalvariate(0, 1)  # at least one value
        rows.append({"t": _time(rng), "values": values})
    return _dumps({"observations": rows})


@pytest.mark.parametrize("seed", range(40))
def test_well_formed_bodies_take_the_fast_path_and_agree(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([0, 1, 2, 50, 400])
    body = (_columns_body if seed % 2 else _rows_body)(rng, n)
    if rng.random() < 0.3:
        body = body.replace(b", ", b",\n\t ").replace(b": ", b" :\r\n")  # any JSON whitespace
    assert decode_fast(body, CHANNELS, MAX_ABS_VALUE) is not None
    _same(_served(body), _plain(body))


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_times_of_one_layout_are_read_from_the_text_and_agree(monkeypatch, separators: tuple[str, str]) -> None:
    # The usual columns body: every time a string of one layout. Its times are read from the body's text, never
    # as a list of strings; duplicates with another value are refused naming the time as written.
    import service.ingest.fastjson

    def refuse(*_a: object, **_k: object) -> object:
        raise AssertionError("the list parser was used")

    monkeypatch.setattr(service.ingest.fastjson, "parse_times", refuse)
    rng = random.Random(5)
    t = [f"2026-03-{rng.randint(1, 31):02d}T{rng.randint(0, 23):02d}:00:00.{rng.randint(0, 999):03d}+01:00"
         for _ in range(300)]
    doc = {"t": t, "values": {"temp": [rng.choice([None, 1.5, 2.0]) for _ in t], "hum": [3.0 for _ in t]}}
    body = json.dumps(doc, separators=separators).encode()
    assert decode_fast(body, CHANNELS, MAX_ABS_VALUE) is not None
    monkeypatch.undo()
    _same(_served(body), _plain(body))


def test_repeated_times_are_merged_or_refused_alike() -> None:
    same = b'{"t": ["2026-03-01T12:00:00Z", "2026-03-01T13:00:00+01:00", 1772366400], "values": {"temp": [1, 1, 1]}}'
    rounded = (b'{"observations": [{"t": "2026-03-01T12:00:00.0000005Z", "values": {"temp": 1}}, '
               b'{"t": "2026-03-01T12:00:00.0000001Z", "values": {"temp": 2}}]}')
    for body in (same, rounded, same.replace(b"[1, 1, 1]", b"[1, 2, null]")):
        assert decode_fast(body, CHANNELS, MAX_ABS_VALUE) is not None
        _same(_served(body), _plain(body))
    assert isinstance(_served(rounded), Unprocessable) and "both round" in _served(rounded).message


DECLINED = [
    # A key given twice, at every level and with every kind of value: the plain parser refuses each.
    b'{"t": [1], "t": [2], "values": {"temp": [1]}}',
    b'{"t": 5, "t": [2], "values": {"temp": [1]}}',
    b'{"t": [2], "values": {"temp": [1]}, "values": {"temp": [1]}}',
    b'{"t": [2], "values": {"temp": [1], "temp": [3]}}',
    b'{"t": [2], "values": {"temp": null, "temp": [3]}}',
    b'{"t": [2], "values": {"temp": 4, "temp": [3]}}',
    b'{"observations": [{"t": 1, "values": {"temp": 1, "temp": 2}}]}',
    b'{"observations": [{"t": 1, "values": {"temp": 1, "temp": null}}]}',
    b'{"observations": [{"t": 1, "t": 2, "values": {"temp": 1}}]}',
    b'{"observations": [{"t": "2026-03-01T12:00:00Z", "t": 2, "values": {"temp": 1}}]}',
    b'{"observations": [{"t": 1, "values": {"temp": 1}, "values": {"hum": 1}}]}',
    b'{"observations": [], "observations": [{"t": 1, "values": {"temp": 1}}]}',
    # An escape anywhere (here one that would hide a colon), NaN and friends, booleans, strings.
    b'{"t": ["2026-03-01T12\\u003a00:00Z"], "values": {"temp": [1], "temp": [1]}}',
    b'{"t": ["2026-03-01T12:00:00Z"], "values": {"te\\u006dp": [1]}}',
    b'{"t": [1], "values": {"temp": [NaN]}}', b'{"t": [1], "values": {"temp": [-Infinity]}}',
    b'{"t": [1], "values": {"temp": [true]}}', b'{"t": [1], "values": {"temp": ["1"]}}',
    b'{"t": [true], "values": {"temp": [1]}}', b'{"t": [null], "values": {"temp": [1]}}',
    b'{"t": [NaN], "values": {"temp": [1]}}',
    # Out of range, unknown names, wrong shapes, both forms, neither, malformed.
    b'{"t": [1], "values": {"temp": [1e101]}}', b'{"t": [1], "values": {"temp": [-1e400]}}',
    b'{"t": [1], "values": {"temp": [1' + b"0" * 400 + b']}}',
    b'{"t": [1e99999999999999999999], "values": {"temp": [1]}}', b'{"t": [1' + b"0" * 4300 + b'], "values": {}}',
    b'{"t": ["0999-12-31T23:59:59Z"], "values": {"temp": [1]}}', b'{"t": ["2026-02-29T00:00:00Z"], "values": {}}',
    b'{"t": ["2026-03-01T12:00:00"], "values": {"temp": [1]}}', b'{"t": [1], "values": {"wind": [1]}}',
    b'{"t": [1, 2], "values": {"temp": [1]}}', b'{"t": [1], "values": {"temp": 1}}', b'{"t": [1]}',
    b'{"values": {"temp": [1]}}', b'{"t": [1], "values": {"temp": [1]}, "observations": []}',
    b'{"t": [1], "values": {}, "x": 1}', b'{}', b'[]', b'null', b'', b'{"t": [1], "values": {"temp": [1]}',
    b'{"t": [1,], "values": {"temp": [1]}}', b'{"t": [01], "values": {"temp": [1]}}',
    b'{"observations": [{"t": 1, "values": {}}]}', b'{"observations": [{"t": 1, "values": {"temp": null}}]}',
    b'{"observations": [{"t": 1}]}', b'{"observations": [{"t": 1, "values": {"temp": 1}, "x": 2}]}',
    b'{"observations": [{"t": {"a": 1}, "values": {"temp": 1}}]}', b'{"observations": {}}',
    b'\xef\xbb\xbf{"t": [1], "values": {"temp": [1]}}', b'{"t": ["\xff"], "values": {"temp": [1]}}',
    b'{"t": ["2026-03-01T12:00:00Z\x00"], "values": {"temp": [1]}}',
]


@pytest.mark.parametrize("body", DECLINED)
def test_other_bodies_are_declined_and_answered_by_the_plain_parser(body: bytes) -> None:
    assert decode_fast(body, CHANNELS, MAX_ABS_VALUE) is None
    _same(_served(body), _plain(body))

"""The vectorised time parser agrees with the scalar one on every input, valid or not."""

import json
import random
from decimal import Decimal

import numpy as np

from service.times.timefmt import MAX_US, MIN_US, TimeParseError, format_time, parse_time
from service.times.timevec import parse_json_strings, parse_times

ODD = ["2026-03-01T12:00:00Z", "2026-03-01t12:00:00z", "2026-03-01 12:00:00.5+01:00", "2024-02-29T00:00:00Z",
       "2023-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
       "2026-03-01T24:00:00Z", "2026-03-01T23:60:00Z", "2026-03-01T23:59:60Z", "2026-03-01T12:00:00+24:00",
       "2026-03-01T12:00:00+01:60", "2026-03-01T12:00:00.1234567Z", "2026-03-01T12:00:00.Z", "2026-03-01T12:00:00",
       "2026-03-01", "0999-12-31T23:59:59Z", "1000-01-01T00:00:00+00:01", "9999-12-31T23:59:59.999999-00:01",
       "9999-12-31T23:59:59.999999Z", "2026-03-01T12:00:00.1234+0100", "2026-03-01T12:00:00.12345Z",
       "2026-03-01T12:00:00+01:00", "2026-03-01T12:00:00\x00", "2026-03-01T12:00:00Z\x00", "", "x" * 40,
       "2026-3-01T12:00:00Z", "2026-03-01T12:00:00.000001-23:59", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
       "2026-03-01T12:00:00.1234Z", "2026-03-01T12:00:00-05:00", "２０26-03-01T12:00:00Z",
       # 7 to 9 fractional digits take the vector path, rounded; more take the scalar one.
       "2026-03-01T12:00:00.0000005Z", "2026-03-01T12:00:00.0000015Z", "2026-03-01T12:00:00.00000250Z",
       "2026-03-01T12:00:00.000002501+05:30", "2026-03-01T12:00:00.999999999Z", "2025-12-31T23:59:59.9999995Z",
       "1969-12-31T23:59:59.9999985-00:00", "9999-12-31T23:59:59.9999995Z", "9999-12-31T23:59:59.9999994Z",
       "0999-12-31T23:59:59.9999995Z", "1000-01-01T00:00:00.0000005+00:00", "2026-03-01T12:00:00.12345678x",
       "2026-03-01T12:00:00.1234567891Z", "2026-03-01T12:00:00.000000500000Z", "2026-03-01T12:00:00.0000015+01:00",
       "2026-03-01T12:00:00.1234567891+01:00"]


def _scalar(values: list) -> tuple[list[int], list[int]]:
    us, bad = [], []
    for i, v in enumerate(values):
        try:
            us.append(parse_time(v))
        except TimeParseError:
            us.append(None)
            bad.append(i)
    return us, bad


def _check(values: list) -> None:
    want, want_bad = _scalar(values)
    got, errors = parse_times(values)
    assert [i for i, _ in errors] == want_bad
    for i, w in enumerate(want):
        if w is not None:
            assert int(got[i]) == w, values[i]


def test_odd_strings_agree() -> None:
    _check(ODD)
    _check([v for v in ODD if v.isascii()])  # one non-ASCII string sends the whole list to the scalar path


def test_strings_of_one_length_agree() -> None:
    # A list of strings all of one length is read in place, unpadded: each length of ODD on its own, and a body's
    # usual list, every time in one layout, with odd ones of the same length among them.
    by_length: dict[int, list[str]] = {}
    for v in ODD:
        by_length.setdefault(len(v), []).append(v)
    for group in by_length.values():
        _check(group)
        _check([v for v in group if v.isascii()])
    rng = random.Random(3)
    usual = [format_time(rng.randint(MIN_US, MAX_US)) for _ in range(500)]
    _check(usual)
    for odd in ("2026-03-01T12:00:00.123456\x00", "2026-02-29T12:00:00.123456Z", "2026-03-01T12:00:00.123456z",
                "2026-03-01 12:00:00.1234+01:00", "9999-12-31T23:59:59.9999995Z"):
        _check([*usual[:50], odd, *usual[50:100]])


def test_random_times_agree() -> None:
    rng = random.Random(7)
    values = []
    for _ in range(3000):
        us = rng.randint(MIN_US, MAX_US)
        text = format_time(us)[:-1]
        frac = rng.choice([0, 1, 3, 6, 7, 8, 9])
        below_us = "".join(rng.choice("0123456789") for _ in range(frac - 6))
        if below_us and rng.random() < 0.3:  # a tie: exactly half a microsecond
            below_us = "5" + "0" * (len(below_us) - 1)
        text = text[:19] + ("." + text[20:20 + frac] + below_us if frac else "")
        tz = rng.choice(["Z", "+05:30", "-11:00", "+00:00"])
        values.append(text + tz)
    _check(values)


def test_numbers_agree() -> None:
    values = [0, -1, 1772366460, Decimal("1772366460.250001"), Decimal("-30610224000"), Decimal("-30610224000.000001"),
              Decimal("253402300799.999999"), Decimal("253402300800"), Decimal("1e3"), Decimal("1.0000001"),
              Decimal("1E+30"), 10**30, Decimal("0.000001"), Decimal("0.0000005"), Decimal("0.0000015"),
              Decimal("-0.0000015"), Decimal("1767225600.1234567"), Decimal("1.00000050000000000000000000000000001"),
              Decimal("1767225600.00000000000000000000000000001"), Decimal("1767225600.99999949999999999999999999999"),
              Decimal("253402300799.9999994"), Decimal("253402300799.9999995"), Decimal("-30610224000.0000005"),
              Decimal("-30610224000.0000015"), Decimal("1e-999999999"), Decimal("NaN"), Decimal("-Infinity")]
    _check(values)


def test_mixed_types_agree() -> None:
    _check(["2026-03-01T12:00:00Z", Decimal("1.5"), True, None, 3, "nope", 1.5])


def test_empty() -> None:
    us, errors = parse_times([])
    assert us.shape == (0,) and errors == [] and us.dtype == np.int64


def test_common_layouts_take_the_vector_path(monkeypatch) -> None:
    import service.times.timevec

    def refuse(*_a: object, **_k: object) -> int:
        raise AssertionError("scalar fallback used")

    monkeypatch.setattr(service.times.timevec, "parse_time", refuse)
    values = ["2026-03-01T12:00:00Z", "2026-03-01T12:00:00.25Z", "1969-12-31T23:59:59.999999-05:30",
              "2026-03-01T12:00:00+01:00", "2026-03-01T12:00:00.1234567Z", "2026-03-01T12:00:00.123456789-01:00",
              Decimal("1772366460.5"), 7, Decimal("1772366460.0000015")]
    us, errors = parse_times(values[:6])
    assert errors == [] and format_time(int(us[2])) == "1970-01-01T05:29:59.999999Z"
    assert [format_time(int(x)) for x in us[4:]] == ["2026-03-01T12:00:00.123457Z", "2026-03-01T13:00:00.123457Z"]
    us, errors = parse_times(values[6:])
    assert errors == [] and us.tolist() == [1_772_366_460_500_000, 7_000_000, 1_772_366_460_000_002]


def test_csv_text_numbers() -> None:
    us, errors = parse_times(["1772366460.5", "2026-03-01T12:00:00Z", "1.0000015", "1.5.5"], text=True)
    assert us[:3].tolist() == [1_772_366_460_500_000, 1_772_366_400_000_000, 1_000_002]
    assert [i for i, _ in errors] == [3]


def _in_place(texts: list[str], separators: tuple[str, str] = (",", ":")) -> np.ndarray | None:
    raw = json.dumps(texts, separators=separators, ensure_ascii=False).encode()
    got = parse_json_strings(raw, len(texts))
    if got is not None:  # whenever it answers, it answers what the list parser does, with no bad time
        want, errors = parse_times(json.loads(raw))
        assert errors == [] and got.tolist() == want.tolist()
    return got


def test_json_text_of_one_layout_is_read_in_place() -> None:
    rng = random.Random(11)
    layouts = [lambda b: b + "Z", lambda b: b + ".123Z", lambda b: b + ".123456z", lambda b: b + ".123456789+05:30",
               lambda b: b.replace("T", " ") + "Z", lambda b: b + "-00:00"]
    for layout in layouts:
        texts = [layout(format_time(rng.randint(MIN_US, MAX_US))[:19]) for _ in range(300)]
        for separators in ((",", ":"), (", ", ": ")):
            assert _in_place(texts, separators) is not None
            assert _in_place(texts[:1], separators) is not None


def test_json_text_it_cannot_read_in_place_is_declined() -> None:
    usual = [format_time(1_772_366_400_000_000 + i * 1_000_123) for i in range(4)]
    assert _in_place(usual) is not None
    declined = [
        [*usual[:2], "2026-02-29T12:00:00.000000Z", usual[3]],  # an invalid time: the list parser says which
        [usual[0][:-2] + "Z", usual[1] + "0", *usual[2:]],  # lengths differ, the total as if they did not
        [usual[0][:-1] + '"', *usual[1:]],  # a quote inside (escaped in the text)
        [usual[0][:-1] + "é", *usual[1:]],  # not ASCII
        ["2026-03-01", "2026-03-02"],  # too short for a time of day
    ]
    for texts in declined:
        assert _in_place(texts) is None, texts
    assert _in_place(usual, ("\n,", ":")) is None  # other spacing
    raw = json.dumps(usual, separators=(",", ":")).encode()
    assert parse_json_strings(raw, 3) is None and parse_json_strings(raw, 5) is None  # not n strings
    assert parse_json_strings(b"[]", 0) is None and parse_json_strings(raw[:-1], 4) is None


def test_numpy_layout_agrees_with_the_plain_one() -> None:
    # The common layouts go through numpy's ISO 8601 parser after a check of every character; `_layout`, the plain
    # version, is its oracle: same µs whenever numpy's answers, and numpy's declines only a list with a bad row.
    from service.times.timevec import _layout, _layout_numpy

    rng = random.Random(5)
    for frac in (0, 1, 3, 6):
        for tz in ("Z", "+05:30", "-11:00"):
            texts = []
            for _ in range(200):
                text = format_time(rng.randint(MIN_US + 86_400_000_000, MAX_US - 86_400_000_000))
                texts.append(text[:19] + ("." + text[20:20 + frac] if frac else "") + tz)
            for bad in range(40):  # the first list all valid; then one character changed in one row
                rows = list(texts)
                if bad:
                    i, pos = rng.randrange(len(rows)), rng.randrange(len(rows[0]))
                    rows[i] = rows[i][:pos] + rng.choice("0123456789:-+.TZ /a\"") + rows[i][pos + 1:]
                layout = (len(rows[0]), frac > 0, tz == "Z")
                if any(((row[19] == ".") != layout[1]) or ((row[-1] in "Zz") != layout[2]) for row in rows):
                    continue  # a row of another layout: `_by_layout` reads it apart from the others
                codes = np.frombuffer("".join(rows).encode(), np.uint8).reshape(len(rows), len(rows[0]))
                plain_us, plain_ok = _layout(codes, *layout)
                fast = _layout_numpy(codes, *layout)
                if fast is None and plain_ok.all():  # "t" or " " between date and time: left to the plain one
                    assert any(row[10] != "T" for row in rows)
                    continue
                assert (fast is not None) == bool(plain_ok.all()), rows
                if fast is not None:
                    assert fast.tolist() == plain_us.tolist()
                    if not bad:
                        assert [format_time(int(x)) for x in fast[:3]] == [
                            format_time(parse_time(t)) for t in rows[:3]]

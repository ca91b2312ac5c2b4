import time
from decimal import ROUND_DOWN, Decimal, localcontext

import pytest

from service.times.timefmt import MAX_US, MIN_US, TimeParseError, format_time, is_rounded, parse_time


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-03-01T12:00:00.25Z", "2026-03-01T12:00:00.250000Z"),
        ("2026-03-01T13:30:00.000001+01:30", "2026-03-01T12:00:00.000001Z"),
        ("1969-12-31T23:59:59.999999-05:30", "1970-01-01T05:29:59.999999Z"),
        ("1000-01-01T00:00:00Z", "1000-01-01T00:00:00.000000Z"),
        (Decimal("1772366460.500001"), "2026-03-01T12:01:00.500001Z"),
        (Decimal("-1.5"), "1969-12-31T23:59:58.500000Z"),
        (Decimal("253402300799.999999"), "9999-12-31T23:59:59.999999Z"),
        (0, "1970-01-01T00:00:00.000000Z"),
    ],
)
def test_round_trip_is_exact(given: object, expected: str) -> None:
    us = parse_time(given)
    assert format_time(us) == expected
    assert parse_time(format_time(us)) == us


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("2026-03-01", "date alone"),
        ("2026-03-01T12:00:00", "no UTC offset"),
        ("9999-12-31T23:59:59.9999995Z", "out of range"),  # rounds up past the last microsecond
        ("0999-12-31T23:59:59Z", "out of range"),
        (Decimal("1e12"), "out of range"),
        (Decimal("253402300799.9999995"), "out of range"),
        (Decimal("1E+999999999999999999"), "out of range"),
        (Decimal("-1E+999999999999999999"), "out of range"),
        (True, "boolean"),
        (1.5, "float"),
        ("1772366460.5", "RFC 3339"),
        ("2026-02-30T00:00:00Z", "day is out of range"),
        ("2026-03-01T12:00:00+24:00", "offset"),
    ],
)
def test_rejects_with_reason(bad: object, reason: str) -> None:
    with pytest.raises(TimeParseError, match=reason):
        parse_time(bad)


def test_query_plus_arriving_as_space_gets_a_hint() -> None:
    with pytest.raises(TimeParseError, match="%2B"):
        parse_time("2026-03-01T12:00:00 01:00", in_query=True)


def test_query_accepts_numeric_seconds_text() -> None:
    assert parse_time("1772366460.5", in_query=True) == 1_772_366_460_500_000
    assert parse_time("1772366460.0000015", in_query=True) == 1_772_366_460_000_002
    with pytest.raises(TimeParseError, match="out of range"):
        parse_time("1e99999999999999999999", in_query=True)  # an exponent beyond Decimal's


T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("given", "us"),
    [
        # Numbers: to the nearest µs, ties to the even µs, on the exact decimal text.
        (Decimal("1767225600.1234567"), T0 + 123_457),
        (Decimal("1767225600.1234564"), T0 + 123_456),
        (Decimal("0.0000005"), 0),
        (Decimal("0.0000015"), 2),
        (Decimal("0.0000025"), 2),
        (Decimal("-0.0000005"), 0),
        (Decimal("-0.0000015"), -2),
        (Decimal("1.00000050000000000000000000000000001"), 1_000_001),  # a tie only to 28 digits: no double rounding
        (Decimal("1767225600.12345650000000000000000000000001"), T0 + 123_457),
        (Decimal("1.7672256001234565e9"), T0 + 123_456),
        (Decimal("-30610224000.0000005"), MIN_US),  # rounds onto the first accepted microsecond
        (Decimal("1e-999999999"), 0),
        # RFC 3339 with 7, 8, 9 and more fractional digits.
        ("2026-01-01T00:00:00.1234567Z", T0 + 123_457),
        ("2026-01-01T00:00:00.12345678Z", T0 + 123_457),
        ("2026-01-01T00:00:00.123456789Z", T0 + 123_457),
        ("2026-01-01T00:00:00.0000005Z", T0),
        ("2026-01-01T00:00:00.0000015Z", T0 + 2),
        ("2026-01-01T00:00:00.000000500Z", T0),
        ("2026-01-01T00:00:00.000000501Z", T0 + 1),
        ("2026-01-01T00:00:00.000002500000Z", T0 + 2),  # picoseconds (numpy datetime64[ps])
        ("2026-01-01T00:00:00.000002500001Z", T0 + 3),
        ("2025-12-31T23:59:59.9999995Z", T0),  # carries into the next second, minute, day and year
        ("2026-01-01T01:00:00.1234565+01:00", T0 + 123_456),
        ("1969-12-31T23:59:59.9999985Z", -2),
    ],
)
def test_sub_microsecond_digits_round_half_to_even(given: object, us: int) -> None:
    assert parse_time(given) == us
    assert is_rounded(given)


def test_at_most_six_digits_are_exact_and_not_rounded() -> None:
    for given, us in [(Decimal("1767225600.123456"), T0 + 123_456), ("2026-01-01T00:00:00.123456Z", T0 + 123_456),
                      (Decimal("1767225600.1234560000"), T0 + 123_456),
                      ("2026-01-01T00:00:00.123456000Z", T0 + 123_456),
                      (1767225600, T0)]:
        assert parse_time(given) == us
        assert not is_rounded(given)
    assert is_rounded("1.0000001", in_query=True) and not is_rounded("1.000001", in_query=True)


def test_rounding_ignores_the_threads_decimal_context() -> None:
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = 5, ROUND_DOWN
        assert parse_time(Decimal("1767225600.1234567")) == T0 + 123_457
        assert parse_time("2026-01-01T00:00:00.0000015Z") == T0 + 2


def test_very_many_digits_stay_fast() -> None:
    digits = "1" * 1_000_000
    start = time.perf_counter()
    assert parse_time(Decimal(f"1767225600.{digits}")) == T0 + 111_111
    assert parse_time(f"1767225600.{digits}", in_query=True) == T0 + 111_111
    assert parse_time(f"2026-01-01T00:00:00.{digits}Z") == T0 + 111_111
    assert time.perf_counter() - start < 5  # linear: about 20 ms here


def test_range_bounds() -> None:
    assert format_time(MIN_US).startswith("1000-01-01")
    assert format_time(MAX_US).startswith("9999-12-31")


def test_format_times_matches_format_time() -> None:
    from service.times.timefmt import format_times

    values = [MIN_US, -1, 0, 1, 1_772_366_460_250_000, MAX_US]
    assert format_times(values) == [format_time(v) for v in values]


@pytest.mark.parametrize("text", ["2026-03-01T24:00:00Z", "2026-03-01T12:60:00Z", "2026-03-01T12:00:60Z",
                                  "2026-03-01T12:00:00+01:60", "0999-03-01T12:00:00Z", "9999-12-31T23:59:59-01:00"])
def test_fast_path_defers_unusual_times_to_the_checks(text: str) -> None:
    with pytest.raises(TimeParseError):
        parse_time(text)

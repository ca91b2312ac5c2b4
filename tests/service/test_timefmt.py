from decimal import Decimal

import pytest

from service.timefmt import MAX_US, MIN_US, TimeParseError, format_time, parse_time


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
        ("2026-03-01T12:00:00.1234567Z", "6 fractional digits"),
        ("0999-12-31T23:59:59Z", "out of range"),
        (Decimal("1e12"), "out of range"),
        (Decimal("1.0000001"), "6 decimal places"),
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


def test_range_bounds() -> None:
    assert format_time(MIN_US).startswith("1000-01-01")
    assert format_time(MAX_US).startswith("9999-12-31")


def test_format_times_matches_format_time() -> None:
    from service.timefmt import format_times

    values = [MIN_US, -1, 0, 1, 1_772_366_460_250_000, MAX_US]
    assert format_times(values) == [format_time(v) for v in values]


@pytest.mark.parametrize("text", ["2026-03-01T24:00:00Z", "2026-03-01T12:60:00Z", "2026-03-01T12:00:60Z",
                                  "2026-03-01T12:00:00+01:60", "0999-03-01T12:00:00Z", "9999-12-31T23:59:59-01:00"])
def test_fast_path_defers_unusual_times_to_the_checks(text: str) -> None:
    with pytest.raises(TimeParseError):
        parse_time(text)

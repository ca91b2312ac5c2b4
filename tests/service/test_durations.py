import pytest

from service.times.durations import DurationParseError, format_duration, format_seconds, parse_duration


@pytest.mark.parametrize(("text", "us"), [
    ("900", 900_000_000),
    ("0.25", 250_000),
    ("1e3", 1_000_000_000),
    ("PT15M", 900_000_000),
    ("PT1H30M", 5_400_000_000),
    ("P1DT2H", 93_600_000_000),
    ("P1W", 604_800_000_000),
    ("PT0.5S", 500_000),
    ("PT1,5S", 1_500_000),
    ("P2D", 172_800_000_000),
    # Digits below the microsecond: rounded to the nearest µs, half to even.
    ("0.0000015", 2),
    ("0.0000025", 2),
    ("0.0000034999", 3),
    ("900.1234567", 900_123_457),
    ("PT0.0000015S", 2),
    ("PT1M0.000000500000001S", 60_000_001),
    ("PT15M0,1234565S", 900_123_456),
    ("P1DT0.0000005S", 86_400_000_000),
    ("1.00000050000000000000000000000000001", 1_000_001),  # no rounding at 28 digits first
    ("1.5e-6", 2),
    ("0.0000005" + "0" * 10_000 + "1", 1),
    ("3162240000.0000005", 3_162_240_000_000_000),  # rounds onto the longest duration allowed (100 years)
])
def test_accepted_forms(text: str, us: int) -> None:
    assert parse_duration(text) == us


@pytest.mark.parametrize(("text", "reason"), [
    ("P1M", "years and months"),
    ("P1Y", "years and months"),
    ("P", "not a duration"),
    ("PT", "not a duration"),
    ("P1DT", "not a duration"),
    ("pt15m", "not a duration"),
    ("-5", "not a duration"),
    ("15 minutes", "not a duration"),
    ("0", "not positive"),
    ("PT0S", "not positive"),
    ("PT0.0000001S", "rounds to zero"),
    ("0.0000005", "rounds to zero"),
    ("PT0.000000S", "not positive"),
    ("P99999999999D", "100 years"),
    ("P" + "9" * 5000 + "D", "100 years"),
    ("PT" + "9" * 5000 + "S", "100 years"),
    ("1e999999999", "100 years"),
    ("1e99999999999999999999", "out of range"),
    ("3162240000.0000006", "100 years"),
    ("3162240001", "100 years"),
])
def test_refused_forms_say_why(text: str, reason: str) -> None:
    with pytest.raises(DurationParseError, match=reason):
        parse_duration(text)


@pytest.mark.parametrize(("us", "text"), [
    (900_000_000, "PT15M"),
    (93_784_500_000, "P1DT2H3M4.5S"),
    (90 * 86_400_000_000, "P90D"),
    (7 * 86_400_000_000, "P7D"),
    (3_600_000_001, "PT1H0.000001S"),
    (59_783_000, "PT59.783S"),
    (1, "PT0.000001S"),
])
def test_formatted_durations_read_back(us: int, text: str) -> None:
    assert format_duration(us) == text
    assert parse_duration(text) == us


def test_format_zero_and_seconds() -> None:
    assert format_duration(0) == "PT0S"
    assert format_seconds(7_000_000_000_000) == "7000000" and format_seconds(59_783_000) == "59.783"
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)

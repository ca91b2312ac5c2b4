from decimal import Decimal

import numpy as np
import pytest

from service.errors import Unprocessable
from service.forecasting.query import (
    DEFAULT_QUANTILES,
    MAX_TIMES,
    parse_body_samples,
    parse_body_times,
    parse_query_quantiles,
    parse_time_spec,
)

S = 1_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


def _loc(exc: pytest.ExceptionInfo[Unprocessable]) -> list:
    return exc.value.details[0]["loc"]


def test_at_keeps_request_order_and_repeats() -> None:
    spec = parse_time_spec(["2026-01-01T00:00:10Z", "1767225600", "2026-01-01T00:00:10Z"], None, None, None, None)
    assert spec.times(last_us=0).tolist() == [T0 + 10 * S, T0, T0 + 10 * S]


def test_start_end_step_is_inclusive() -> None:
    spec = parse_time_spec(None, "2026-01-01T00:00:00Z", "2026-01-01T00:45:00Z", "PT15M", None)
    assert spec.times(last_us=0).tolist() == [T0 + k * 900 * S for k in range(4)]


def test_horizon_counts_from_the_last_observation() -> None:
    spec = parse_time_spec(None, None, None, "60", "PT3M")
    assert spec.times(last_us=T0).tolist() == [T0 + 60 * S, T0 + 120 * S, T0 + 180 * S]


@pytest.mark.parametrize(("args", "loc", "msg"), [
    ((None, None, None, None, None), ["query", "at"], "no query times"),
    ((["1"], "1", None, None, None), ["query", "start"], "not both"),
    ((None, "1", None, "10", None), ["query", "end"], "required"),
    ((None, "20", "10", "1", None), ["query", "end"], "before start"),
    ((None, "0", "100000", "1", None), ["query", "step"], "at most 10000"),
    ((None, None, None, "60", "30"), ["query", "horizon"], "shorter than step"),
    ((None, None, None, "P1M", "P1D"), ["query", "step"], "years and months"),
    ((["2026-01-01T00:00:00Z", "2026-01-01T00:00:00 01:00"], None, None, None, None), ["query", "at", 1], "%2B"),
    ((["yesterday"], None, None, None, None), ["query", "at", 0], "RFC 3339"),
])
def test_refusals_name_the_field(args: tuple, loc: list, msg: str) -> None:
    with pytest.raises(Unprocessable, match=msg) as exc:
        parse_time_spec(*args)
    assert _loc(exc) == loc


def test_times_and_durations_round_to_the_microsecond() -> None:
    # Ties go to the even µs: ...0000005 → 0, ...0000015 → 2, ...0000045 → 4.
    spec = parse_time_spec(["1767225600.0000015", "2026-01-01T00:00:00.123456789Z", "2026-01-01T00:00:00.0000005Z",
                            "1767225600.12345678"], None, None, None, None)
    assert spec.times(0).tolist() == [T0 + 2, T0 + 123_457, T0, T0 + 123_457]
    spec = parse_time_spec(None, "2026-01-01T00:00:00.0000005Z", "1767225600.0000045", "0.0000015", None)
    assert spec.times(0).tolist() == [T0, T0 + 2, T0 + 4]
    spec = parse_time_spec(None, None, None, "PT0.0000015S", "0.0000045")
    assert spec.times(T0).tolist() == [T0 + 2, T0 + 4]
    spec = parse_body_times([Decimal("1767225600.0000015"), "2026-01-01T00:00:00.12345678Z"])
    assert spec.times(0).tolist() == [T0 + 2, T0 + 123_457]


@pytest.mark.parametrize(("args", "loc", "msg"), [
    ((None, None, None, "0.0000004", "60"), ["query", "step"], "rounds to zero"),
    ((None, None, None, "60", "PT0.0000005S"), ["query", "horizon"], "rounds to zero"),
    ((["1", "9999-12-31T23:59:59.9999995Z"], None, None, None, None), ["query", "at", 1], "out of range"),
    ((None, "1", "253402300799.9999995", "1", None), ["query", "end"], "out of range"),
])
def test_rounding_refusals_name_the_field(args: tuple, loc: list, msg: str) -> None:
    with pytest.raises(Unprocessable, match=msg) as exc:
        parse_time_spec(*args)
    assert _loc(exc) == loc


def test_too_many_at_times() -> None:
    with pytest.raises(Unprocessable, match="at most 10000") as exc:
        parse_time_spec([str(i) for i in range(MAX_TIMES + 1)], None, None, None, None)
    assert _loc(exc) == ["query", "at"]
    assert len(parse_time_spec([str(i) for i in range(MAX_TIMES)], None, None, None, None).times(0)) == MAX_TIMES


def test_quantiles() -> None:
    assert parse_query_quantiles(None) == DEFAULT_QUANTILES
    assert parse_query_quantiles("0.9,0.1,5e-1") == (0.9, 0.1, 0.5)
    for bad, msg in (("0", "strictly between"), ("1", "strictly between"), ("0.5,0.5", "repeated"),
                     ("nan", "strictly between"), ("a", "not a number"), ("", "not a number")):
        with pytest.raises(Unprocessable, match=msg):
            parse_query_quantiles(bad)


def test_body_times_and_samples() -> None:
    spec = parse_body_times(["2026-01-01T00:00:00Z", Decimal("1767225600.5"), 1767225601])
    assert spec.times(0).tolist() == [T0, T0 + S // 2, T0 + S]
    with pytest.raises(Unprocessable, match="non-empty list"):
        parse_body_times([])
    with pytest.raises(Unprocessable, match="boolean") as exc:
        parse_body_times([True])
    assert _loc(exc) == ["body", "at", 0]
    got = parse_body_samples({"quantiles": [Decimal("0.25"), Decimal("0.75")], "samples": 7, "seed": 3})
    assert (got.quantiles, got.samples, got.seed) == ((0.25, 0.75), 7, 3)
    # JSON Schema's "integer" holds 2.0 (the OpenAPI document says integer): taken as 2, as Schemathesis found
    got = parse_body_samples({"samples": Decimal("2.0"), "seed": Decimal("3E+0")})
    assert (got.samples, got.seed) == (2, 3) and type(got.samples) is int
    for body, loc in (({"samples": 0}, ["body", "samples"]), ({"samples": 1001}, ["body", "samples"]),
                      ({"samples": Decimal("2.5")}, ["body", "samples"]), ({"seed": -1}, ["body", "seed"]),
                      ({"quantiles": "0.5"}, ["body", "quantiles"]),
                      ({"quantiles": [Decimal("1.5")]}, ["body", "quantiles", 0])):
        with pytest.raises(Unprocessable) as exc:
            parse_body_samples(body)
        assert _loc(exc) == loc


def test_range_times_are_int64() -> None:
    assert parse_time_spec(None, "0", "10", "5", None).times(0).dtype == np.int64

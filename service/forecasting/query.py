"""What a forecast request asks for, parsed strictly from the query string or a JSON body.

Query times are integer microseconds since the Unix epoch (UTC) throughout; they become float seconds only at the
model's door (service/forecasting/forecast.py). Every refusal is a 422 naming the field, e.g. `["query", "at", 3]`.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import overload

import numpy as np

from service.errors import Unprocessable
from service.times.durations import DurationParseError, parse_duration
from service.times.timefmt import TimeParseError, parse_time

MAX_TIMES = 10_000
MAX_QUANTILES = 99
MAX_SAMPLES = 1_000
DEFAULT_QUANTILES = (0.05, 0.5, 0.95)
DEFAULT_SAMPLES = 100


@dataclass(frozen=True)
class TimeSpec:
    """The query times in one of three forms. `times(last_us)` lists them in request order (µs).

    at: explicit times, unsorted and repeated allowed; start/end/step: `start, start+step, …` up to `end`;
    horizon/step: `last+step, last+2·step, …` up to `last+horizon`, `last` being the last observation.
    """

    at: tuple[int, ...] | None = None
    start: int | None = None
    end: int | None = None
    step: int | None = None
    horizon: int | None = None

    def times(self, last_us: int) -> np.ndarray:
        """int64 µs, shape (Q,). `last_us`: the series' last observation (only the horizon form uses it)."""
        if self.at is not None:
            return np.asarray(self.at, dtype=np.int64)
        assert self.step is not None  # parse_time_spec guarantees one complete form
        if self.horizon is not None:
            n = self.horizon // self.step
            return last_us + self.step * np.arange(1, n + 1, dtype=np.int64)
        assert self.start is not None and self.end is not None
        n = (self.end - self.start) // self.step + 1
        return self.start + self.step * np.arange(n, dtype=np.int64)


@dataclass(frozen=True)
class SampleSpec:
    """How to summarise the predictive distribution: quantile levels in (0, 1), sample count, optional seed."""

    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    samples: int = DEFAULT_SAMPLES
    seed: int | None = None


def _time(value: object, loc: list[str | int], *, in_query: bool) -> int:
    try:
        return parse_time(value, in_query=in_query)
    except TimeParseError as exc:
        raise Unprocessable.at(loc, str(exc)) from None


def _duration(text: str, loc: list[str | int]) -> int:
    try:
        return parse_duration(text)
    except DurationParseError as exc:
        raise Unprocessable.at(loc, str(exc)) from None


def parse_duration_param(text: str | None, loc: list[str | int]) -> int | None:
    """An optional duration query parameter (seconds or ISO 8601) → µs, or None."""
    return None if text is None else _duration(text, loc)


def parse_time_spec(at: list[str] | None, start: str | None, end: str | None, step: str | None,
                    horizon: str | None) -> TimeSpec:
    """Exactly one of: `at` (repeatable), `start`+`end`+`step`, or `horizon`+`step`. Query strings in, µs out."""
    if at:
        others = [name for name, v in (("start", start), ("end", end), ("step", step), ("horizon", horizon))
                  if v is not None]
        if others:
            raise Unprocessable.at(["query", others[0]], "give either 'at' or a range (start, end, step or "
                                                         "horizon, step), not both")
        if len(at) > MAX_TIMES:
            raise Unprocessable.at(["query", "at"], f"{len(at)} query times; at most {MAX_TIMES} are allowed")
        return TimeSpec(at=tuple(_time(v, ["query", "at", i], in_query=True) for i, v in enumerate(at)))
    if step is None:
        raise Unprocessable.at(["query", "at"], "no query times: give 'at' (repeatable), or 'start', 'end' and "
                                                "'step', or 'horizon' and 'step'")
    step_us = _duration(step, ["query", "step"])
    if horizon is not None:
        if start is not None or end is not None:
            raise Unprocessable.at(["query", "horizon"], "give either 'horizon' or 'start' and 'end', not both")
        horizon_us = _duration(horizon, ["query", "horizon"])
        n = horizon_us // step_us
        if n < 1:
            raise Unprocessable.at(["query", "horizon"], f"horizon {horizon!r} is shorter than step {step!r}: "
                                                         "no query times")
        if n > MAX_TIMES:
            raise Unprocessable.at(["query", "step"], f"horizon/step gives {n} query times; at most {MAX_TIMES} "
                                                      "are allowed")
        return TimeSpec(horizon=horizon_us, step=step_us)
    for name, value in (("start", start), ("end", end)):
        if value is None:
            raise Unprocessable.at(["query", name], f"'{name}' is required with 'step' (or give 'horizon')")
    start_us = _time(start, ["query", "start"], in_query=True)
    end_us = _time(end, ["query", "end"], in_query=True)
    if end_us < start_us:
        raise Unprocessable.at(["query", "end"], f"end {end!r} is before start {start!r}")
    n = (end_us - start_us) // step_us + 1
    if n > MAX_TIMES:
        raise Unprocessable.at(["query", "step"], f"start..end by step gives {n} query times; at most "
                                                  f"{MAX_TIMES} are allowed")
    return TimeSpec(start=start_us, end=end_us, step=step_us)


def parse_body_times(at: object) -> TimeSpec:
    """`"at"` of a JSON body (decoded with parse_float=Decimal): a list of RFC 3339 strings or Unix seconds."""
    if not isinstance(at, list) or not at:
        raise Unprocessable.at(["body", "at"], "expected a non-empty list of times")
    if len(at) > MAX_TIMES:
        raise Unprocessable.at(["body", "at"], f"{len(at)} query times; at most {MAX_TIMES} are allowed")
    return TimeSpec(at=tuple(_time(v, ["body", "at", i], in_query=False) for i, v in enumerate(at)))


def _quantile(value: object, loc: list[str | int]) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal, float)):
        raise Unprocessable.at(loc, f"expected a number in (0, 1), got {type(value).__name__}")
    try:
        q = float(value.strip()) if isinstance(value, str) else float(value)
    except OverflowError:  # an integer beyond float64
        q = math.inf
    except ValueError:
        raise Unprocessable.at(loc, f"not a number: {str(value)[:32]!r}") from None
    if not (math.isfinite(q) and 0.0 < q < 1.0):
        raise Unprocessable.at(loc, f"quantile {str(value)[:32]} is not strictly between 0 and 1")
    return q


def parse_quantiles(values: Sequence[object], loc: list[str | int]) -> tuple[float, ...]:
    """Quantile levels, each in (0, 1), distinct, at most MAX_QUANTILES; kept in the order given."""
    if not values:
        raise Unprocessable.at(loc, "expected at least one quantile level")
    if len(values) > MAX_QUANTILES:
        raise Unprocessable.at(loc, f"{len(values)} quantile levels; at most {MAX_QUANTILES} are allowed")
    levels = tuple(_quantile(v, [*loc, i]) for i, v in enumerate(values))
    if len(set(levels)) != len(levels):
        raise Unprocessable.at(loc, f"repeated quantile level in {', '.join(map(str, levels))}")
    return levels


def parse_query_quantiles(text: str | None) -> tuple[float, ...]:
    """`quantiles=0.05,0.5,0.95` → (0.05, 0.5, 0.95); absent → the default."""
    if text is None:
        return DEFAULT_QUANTILES
    return parse_quantiles(text.split(","), ["query", "quantiles"])


def parse_body_samples(body: dict[str, object]) -> SampleSpec:
    """`quantiles`, `samples` and `seed` of a JSON body, each optional."""
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    if body.get("quantiles") is not None:
        raw = body["quantiles"]
        if not isinstance(raw, list):
            raise Unprocessable.at(["body", "quantiles"], "expected a list of numbers in (0, 1)")
        quantiles = parse_quantiles(raw, ["body", "quantiles"])
    samples = _int_field(body, "samples", DEFAULT_SAMPLES, 1, MAX_SAMPLES)
    seed = _int_field(body, "seed", None, 0, 2**63 - 1)
    return SampleSpec(quantiles=quantiles, samples=samples, seed=seed)


@overload
def _int_field(body: dict[str, object], name: str, default: int, lo: int, hi: int) -> int: ...
@overload
def _int_field(body: dict[str, object], name: str, default: None, lo: int, hi: int) -> int | None: ...


def _int_field(body: dict[str, object], name: str, default: int | None, lo: int, hi: int) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, Decimal) and value.is_finite() and lo <= value <= hi and value == value.to_integral_value():
        value = int(value)  # 3.0 is the integer 3 in JSON, as the schema says (bodies decode numbers as Decimal)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unprocessable.at(["body", name], f"expected an integer, got {str(value)[:32]}")
    if not lo <= value <= hi:
        raise Unprocessable.at(["body", name], f"{str(value)[:32]} is not between {lo} and {hi}")
    return value

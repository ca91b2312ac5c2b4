"""Check a training request before any job exists: the series, their common channels, enough data, the config.

Everything a worker would otherwise discover minutes later is refused here with a 4xx naming the field.
"""

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from model import ConfigError, ModelConfig
from service import storage
from service.errors import Unprocessable
from service.storage.keys import ANONYMOUS, Principal

# Fewer observation times than this (over all chosen series, in their common channels) cannot make training
# windows with a context and a target part.
MIN_OBSERVATIONS = 10
# With no `window` in the config, a window holds about this many observation times of the densest channel.
DEFAULT_WINDOW_POINTS = 64
# One version trains on at most this many series, listed or matched by a key prefix.
MAX_TRAINING_SERIES = 10_000


@dataclass(frozen=True)
class TrainingPlan:
    config: dict[str, Any]  # ModelConfig.to_dict(), defaults filled in
    channels: list[str]
    series: list[str]


def series_keys(engine: Engine, series: list[str] | None, prefix: str | None,
                caller: Principal = ANONYMOUS) -> list[str]:
    """The keys to train on: `series` as given, or every key starting with `prefix` that the caller sees; exactly
    one of the two."""
    if prefix is not None:
        if series is not None:
            raise Unprocessable.at(["body", "series_prefix"], "give `series` or `series_prefix`, not both")
        within = caller.within(prefix)
        if within is False:  # answered as a prefix no key starts with
            raise Unprocessable.at(["body", "series_prefix"], f"no series key starts with {prefix!r}")
        return keys_for_prefix(engine, within, asked=prefix)
    if series is None:
        raise Unprocessable.at(["body", "series"], "field required: give `series` (a list of keys) or "
                                                   "`series_prefix`")
    if len(set(series)) != len(series):
        raise Unprocessable.at(["body", "series"], "series keys must be distinct")
    if len(series) > MAX_TRAINING_SERIES:
        raise Unprocessable.at(["body", "series"], f"{len(series)} series: a model trains on at most "
                                                   f"{MAX_TRAINING_SERIES}")
    return series


def keys_for_prefix(engine: Engine, prefix: str, asked: str | None = None) -> list[str]:
    """Every series key that starts with `prefix`, in key order; Unprocessable when none does or too many do.
    `asked`: the prefix the client sent, which the messages name (`prefix` may be a tenant's longer one)."""
    keys = storage.keys_with_prefix(engine, prefix, limit=MAX_TRAINING_SERIES + 1)
    prefix = asked or prefix
    if not keys:
        raise Unprocessable.at(["body", "series_prefix"], f"no series key starts with {prefix!r}")
    if len(keys) > MAX_TRAINING_SERIES:
        raise Unprocessable.at(["body", "series_prefix"], f"more than {MAX_TRAINING_SERIES} series keys start with "
                                                          f"{prefix!r}: a model trains on at most "
                                                          f"{MAX_TRAINING_SERIES} series; use a longer prefix")
    return keys


def plan(engine: Engine, series_keys: list[str], overrides: dict[str, Any],
         caller: Principal = ANONYMOUS) -> TrainingPlan:
    """Validate a training request. Raises NotFound (unknown series, or one outside the caller's prefix) or
    Unprocessable (naming the field)."""
    try:
        config = ModelConfig.from_dict(overrides)
    except ConfigError as exc:
        raise Unprocessable.at(["body", "config", exc.field], exc.reason) from None
    records = storage.get_many(engine, series_keys, caller.sees_series)
    common = [c for c in records[0].channels if all(c in r.channels for r in records[1:])]
    if not common:
        raise Unprocessable.at(["body", "series"], "these series have no channel in common: "
                               + "; ".join(f"{r.key}: {list(r.channels)}" for r in records))
    stats = storage.channel_stats(engine, [r.id for r in records])
    # Per series, the busiest common channel's count is a lower bound on its number of observation times.
    counts = {r.key: max((stats[r.id][c].count for c in common if c in stats[r.id]), default=0) for r in records}
    if sum(counts.values()) < MIN_OBSERVATIONS:
        raise Unprocessable.at(["body", "series"], f"too little data to train on: {sum(counts.values())} "
                               f"observation times in channels {common} ({counts}); at least {MIN_OBSERVATIONS} "
                               "are needed")
    # The local frame sizes its windows from `context` and `horizon`; `window` belongs to the global frame.
    if config.frame == "global" and "window" not in overrides:
        config = config.replace(window=_default_window(stats, common))
    return TrainingPlan(config=config.to_dict(), channels=common, series=list(series_keys))


def _default_window(stats: dict[int, dict[str, Any]], channels: list[str]) -> float | None:
    """Seconds: DEFAULT_WINDOW_POINTS mean gaps of the densest channel, capped at half the longest series.

    None (each series one whole window) when the series are shorter than that anyway.
    """
    gaps, spans = [], []
    for per_channel in stats.values():
        for channel in channels:
            s = per_channel.get(channel)
            if s is None or s.count < 2:
                continue
            span = (s.last_t - s.first_t) / 1e6
            gaps.append(span / (s.count - 1))
            spans.append(span)
    if not gaps or min(gaps) <= 0:
        return None
    window = DEFAULT_WINDOW_POINTS * min(gaps)
    if window * 2 > max(spans):
        return None
    return float(f"{window:.6g}") if math.isfinite(window) else None

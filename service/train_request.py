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

# Fewer observation times than this (over all chosen series, in their common channels) cannot make training
# windows with a context and a target part.
MIN_OBSERVATIONS = 10
# With no `window` in the config, a window holds about this many observation times of the densest channel.
DEFAULT_WINDOW_POINTS = 64


@dataclass(frozen=True)
class TrainingPlan:
    config: dict[str, Any]  # ModelConfig.to_dict(), defaults filled in
    channels: list[str]
    series: list[str]


def plan(engine: Engine, series_keys: list[str], overrides: dict[str, Any]) -> TrainingPlan:
    """Validate a training request. Raises NotFound (unknown series) or Unprocessable (naming the field)."""
    try:
        config = ModelConfig.from_dict(overrides)
    except ConfigError as exc:
        raise Unprocessable.at(["body", "config", exc.field], exc.reason) from None
    records = [storage.get_series(engine, key) for key in series_keys]
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
    if "window" not in overrides:
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

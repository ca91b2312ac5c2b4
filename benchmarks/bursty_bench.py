"""Seasons and forecasts on readings that come in bursts: an hour or two of them a minute apart, once every half
day to four days, each burst at a random hour of its day (a device that wakes up now and then, a nurse's rounds).

Each series is 5 + sin(2 pi t / day) [+ a sin(2 pi t / week)] + N(0, 0.2^2) at those times. Per case and seed: the
seasons the default fit finds (model.local.choose_sizes) and the ones its chosen component carries, and the MAE of
the default model's forecast (`ModelConfig(horizon=3 days)`) against the noise-free cycle every 10 minutes over the
3 days after the last reading, beside the last value's, and the share of readings the same noise would give there
(a second draw of it) that the 90% band holds. Then, on bursts of series with no season (white noise, a
trend in noise, a random walk, a wandering level), how many of 20 series `detect_seasons` finds a season in.

    python benchmarks/bursty_bench.py [--seeds 0] [--only daily,half]   # writes benchmarks/results/bursty.md
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model import ModelConfig, Sequence, fit, forecast
from model.local import choose_sizes
from model.seasons import detect_seasons

RESULTS = Path(__file__).parent / "results" / "bursty.md"
DAY = 86_400.0
T0 = 1.7e9
HORIZON = 3 * DAY


@dataclass(frozen=True)
class Case:
    every: float  # days between bursts
    hours: float  # a burst's length
    minutes: float  # between readings in a burst
    days: float  # the history's length
    weekly: float  # the weekly cycle's amplitude (the daily one's is 1)


CASES = {
    "half": Case(0.5, 1, 2, 30, 0.0),
    "daily": Case(1, 1, 1, 60, 0.0),
    "every2": Case(2, 2, 5, 60, 0.0),
    "weekly_daily": Case(1, 1, 1, 120, 0.7),
    "every3w": Case(3, 1, 1, 180, 0.7),
    "every4w": Case(4, 2, 1, 240, 0.7),
}


def burst_times(rng: np.random.Generator, case: Case) -> np.ndarray:
    starts = T0 + np.arange(0, case.days, case.every) * DAY
    starts = starts + rng.uniform(0, DAY, starts.size)
    per = int(case.hours * 60 / case.minutes)
    t = (starts[:, None] + np.arange(per) * case.minutes * 60 + rng.uniform(0, 10, (starts.size, per))).ravel()
    return np.sort(t[t < T0 + case.days * DAY])


def cycle(t: np.ndarray, case: Case) -> np.ndarray:
    return 5 + np.sin(2 * np.pi * t / DAY) + case.weekly * np.sin(2 * np.pi * t / (7 * DAY))


def run(name: str, seed: int) -> dict:
    case = CASES[name]
    rng = np.random.default_rng(seed)
    t = burst_times(rng, case)
    series = Sequence(t, (cycle(t, case) + 0.2 * rng.normal(size=t.size))[:, None], ("v",))
    config = ModelConfig(horizon=HORIZON, seed=seed)
    found = choose_sizes([series], config).seasons
    started = time.perf_counter()
    fitted = fit([series], config)
    seconds = time.perf_counter() - started
    at = t[-1] + np.arange(600.0, HORIZON + 1, 600.0)
    result = forecast(fitted, series, at, seed=0)
    mean, lower, upper = result.mean[:, 0], result.quantiles[0, :, 0], result.quantiles[-1, :, 0]
    readings = cycle(at, case) + 0.2 * np.random.default_rng(1000 + seed).normal(size=at.size)
    component = fitted.component_for(None)
    return {"case": name, "seed": seed, "found": found, "carried": component.seasons if component else (),
            "mae": float(np.abs(mean - cycle(at, case)).mean()),
            "last": float(np.abs(series.values[-1, 0] - cycle(at, case)).mean()), "seconds": seconds,
            "coverage": float(((lower <= readings) & (readings <= upper)).mean())}


def false_seasons(kind: str, count: int = 20) -> int:
    """Of `count` bursty series of `kind` (no season in any), how many detect_seasons finds a season in."""
    found = 0
    for seed in range(count):
        rng = np.random.default_rng(seed)
        t = burst_times(rng, Case(float(rng.choice([0.5, 1, 2, 3])), 1, 1, 90, 0.0))
        days = (t - t[0]) / DAY
        if kind == "noise":
            y = rng.normal(size=t.size)
        elif kind == "trend":
            y = 0.05 * days + rng.normal(size=t.size)
        elif kind == "random walk":
            y = 0.1 * np.cumsum(rng.normal(size=t.size))
        else:  # a level that wanders with a memory of two days, and noise
            decay = np.exp(-np.diff(days, prepend=days[0]) / 2)
            y = np.zeros(t.size)
            for i in range(1, t.size):
                y[i] = y[i - 1] * decay[i] + np.sqrt(1 - decay[i] ** 2) * rng.normal()
            y += 0.3 * rng.normal(size=t.size)
        found += bool(detect_seasons([Sequence(t, y[:, None], ("v",))], longest=30 * DAY))
    return found


def days(periods: tuple[float, ...]) -> str:
    return ", ".join(f"{p / DAY:.3f}" for p in periods) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--only", default=",".join(CASES))
    args = parser.parse_args()
    lines = ["| case | seed | seasons found (days) | carried by the component | MAE | last value's MAE | "
             "MAE ÷ last value's | 90% band holds | fit s |", "|---|---|---|---|---|---|---|---|---|"]
    for name in args.only.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            r = run(name, seed)
            lines.append(f"| {name} | {seed} | {days(r['found'])} | {days(r['carried'])} | {r['mae']:.3f} | "
                         f"{r['last']:.3f} | {r['mae'] / r['last']:.3f} | {100 * r['coverage']:.0f}% | "
                         f"{r['seconds']:.0f} |")
            print(lines[-1], flush=True)
    lines += ["", "| series with no season (20 each) | with a season found |", "|---|---|"]
    for kind in ("noise", "trend", "random walk", "wandering level"):
        lines.append(f"| {kind} | {false_seasons(kind)} |")
        print(lines[-1], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(f"Produced by `python benchmarks/bursty_bench.py --seeds {args.seeds} --only {args.only}`\n\n"
                       + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

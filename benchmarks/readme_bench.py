"""The README's training example, reproducible: does a model trained with the defaults and a 30-minute horizon beat
"the last value stays" over the next 30 minutes?

The series is the README's (2,000 irregular times 30-90 s apart from 2026-01-01, temp = 21 + 2 sin(t / 3600), hum =
40 + 5 cos(t / 5400), a fifth of hum missing) with `random.seed(seed)` first; the truth is that noise-free
generator every 60 s over the 30 minutes after the last observation. Training is `model.fit` with
`ModelConfig(horizon=1800, seed=seed)`, what the service runs for `POST /v1/models` with `"horizon": "PT30M"`.

    python benchmarks/readme_bench.py [--seeds 0,1,2]     # writes benchmarks/results/readme.md
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model import ModelConfig, Sequence, fit, forecast

RESULTS = Path(__file__).parent / "results" / "readme.md"


def readme_series(seed: int) -> Sequence:
    """The README example's observations, as its snippet makes them after random.seed(seed)."""
    random.seed(seed)
    t, times, rows = 1767225600.0, [], []
    for _ in range(2000):
        t += random.uniform(30, 90)
        times.append(round(t, 3))
        rows.append([21 + 2 * math.sin(t / 3600), None if random.random() < 0.2 else 40 + 5 * math.cos(t / 5400)])
    values = np.array([[np.nan if v is None else v for v in row] for row in rows])
    return Sequence(np.array(times), values, ("temp", "hum"))


def truth(at: np.ndarray) -> np.ndarray:
    return np.stack([21 + 2 * np.sin(at / 3600), 40 + 5 * np.cos(at / 5400)], axis=1)


def run(seed: int) -> dict:
    series = readme_series(seed)
    started = time.perf_counter()
    fitted = fit([series], ModelConfig(horizon=1800.0, seed=seed))
    seconds = time.perf_counter() - started
    at = series.times[-1] + np.arange(60.0, 1800.0 + 1, 60.0)
    fc = forecast(fitted, series, at, seed=0)
    last = np.array([series.values[~np.isnan(series.values[:, c]), c][-1] for c in range(2)])
    model_mse = ((fc.mean - truth(at)) ** 2).mean(axis=0)
    last_mse = ((last - truth(at)) ** 2).mean(axis=0)
    return {"seed": seed, "seconds": seconds, "ratio": model_mse / last_mse, "blend": fitted.component.blend}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    rows = [run(int(s)) for s in args.seeds.split(",")]
    lines = ["| seed | MSE ÷ last value's, temp | hum | fit s | blend |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['ratio'][0]:.3f} | {r['ratio'][1]:.3f} | {r['seconds']:.0f} | "
                     f"{', '.join(f'{w:g}' for w in r['blend'])} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("Produced by `python benchmarks/readme_bench.py --seeds " + args.seeds + "` (target: each "
                       "ratio ≤ 0.5)\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Calibration of forecast uncertainty on held-out windows: how often the 90% and 50% bands hold the truth.

    OMP_NUM_THREADS=2 python benchmarks/calibration_bench.py [--series 500] [--epochs 30] [--samples 200]

Trains a model (default architecture) on the training part of the "periodic" benchmark set (model.datasets),
with its validation series (which also calibrate the bands, as a worker's newest fifth of each series does), then,
on its held-out test series, forecasts through the service's own path (the context becomes a `model.Sequence`
relative to its first time, as service/forecasting/forecast.py builds it; solved by `forecast_batch` as the batcher
does):
- interpolation: the encoder sees the first half of a held-out series less a random 20% of its points; scored
  on those 20%;
- extrapolation: scored on every point after that context, in three bands of the model's horizon (first, second
  and last third).
A band [q_lo, q_hi] covers a point when q_lo <= truth <= q_hi. Targets: 90% band 85-95%, 50% band 45-55%.
Writes benchmarks/results/calibration.md.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import model  # noqa: E402
from model import datasets  # noqa: E402

LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)


def coverage(fitted: model.FittedModel, windows: list[tuple], samples: int, seed: int) -> list[tuple]:
    """windows: (context Sequence, at (Q,), truth (Q, C)). Returns per point (horizon s or -1, in90, in50, |err|,
    predicted std), horizon measured from the context's last time (-1: interpolation)."""
    out = []
    for start in range(0, len(windows), 32):  # the batcher's default batch size
        chunk = windows[start:start + 32]
        results = model.forecast_batch(fitted, [(c, at) for c, at, _ in chunk], samples=samples, quantiles=LEVELS,
                                       seeds=[seed + start + i for i in range(len(chunk))])
        for (ctx, at, truth), r in zip(chunk, results, strict=True):
            q = {lv: r.quantiles[list(r.quantile_levels).index(lv)] for lv in LEVELS}
            in90 = (q[0.05] <= truth) & (truth <= q[0.95])
            in50 = (q[0.25] <= truth) & (truth <= q[0.75])
            ahead = np.where(at > ctx.times[-1], at - ctx.times[-1], -1.0)
            for i in range(at.size):
                for c in range(truth.shape[1]):
                    if np.isfinite(truth[i, c]):
                        out.append((ahead[i], in90[i, c], in50[i, c], abs(r.mean[i, c] - truth[i, c]),
                                    r.std[i, c]))
    return out


def windows(task: datasets.Task, holdout: float, seed: int) -> list[tuple]:
    """Held-out windows shaped like the service's requests: the context is what the encoder saw in training
    (the first half of a series) less a random `holdout` fraction of its points, which become interpolation
    targets; every point after the context is an extrapolation target. Times relative to the context's first
    one, as service/forecasting/forecast.py sends them."""
    rng = np.random.default_rng(seed)
    out = []
    for ctx, at, truth in task.test:
        hide = np.zeros(ctx.times.size, dtype=bool)
        inner = np.arange(1, ctx.times.size - 1)  # keep both ends: the context's span stays the same
        hide[rng.choice(inner, int(holdout * ctx.times.size), replace=False)] = True
        origin = ctx.times[0]
        seen = model.Sequence(ctx.times[~hide] - origin, ctx.values[~hide], ctx.channels)
        targets = np.concatenate([ctx.times[hide], at]) - origin
        out.append((seen, targets, np.concatenate([ctx.values[hide], truth])))
    return out


def table(rows: list[tuple], horizon: float) -> list[str]:
    arr = np.array(rows, dtype=np.float64)
    bands = [("interpolation", arr[:, 0] < 0)]
    for k in range(3):
        lo, hi = k * horizon / 3, (k + 1) * horizon / 3
        bands.append((f"extrapolation {lo:.2f}-{hi:.2f} s ahead", (arr[:, 0] > lo) & (arr[:, 0] <= hi)))
    lines = ["| band | points | 90% band covers | 50% band covers | mean abs error | mean predicted std |",
             "|---|---|---|---|---|---|"]
    for name, sel in bands:
        if not sel.any():
            continue
        a = arr[sel]
        c90, c50 = a[:, 1].mean() * 100, a[:, 2].mean() * 100
        mark90 = "" if 85 <= c90 <= 95 else " (miss)"
        mark50 = "" if 45 <= c50 <= 55 else " (miss)"
        lines.append(f"| {name} | {sel.sum()} | {c90:.1f}%{mark90} | {c50:.1f}%{mark50} | {a[:, 3].mean():.4f} | "
                     f"{a[:, 4].mean():.4f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=500, help="series in the data set (80%% train, 20%% held out)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                    help="a ModelConfig field, e.g. --set train_output_times=null")
    ap.add_argument("--save", type=Path, help="write the trained model here (safetensors)")
    ap.add_argument("--load", type=Path, help="evaluate this saved model instead of training one")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "calibration.md")
    args = ap.parse_args()
    task = datasets.periodic("extrap", n=args.series, seed=0)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = model.ModelConfig.from_dict({"frame": "global", "epochs": args.epochs, "gradient": "backprop", "seed": 0,
                                           **overrides})
    began = time.perf_counter()
    if args.load:
        fitted = model.load(args.load)
    else:
        fitted = model.fit(task.train, config, validation=task.validation)  # bands calibrate on these
        if args.save:
            model.save(fitted, args.save)
    train_s = time.perf_counter() - began
    rows = coverage(fitted, windows(task, 0.2, seed=1), args.samples, seed=1)
    lines = [
        "# Forecast calibration (benchmarks/calibration_bench.py)",
        "",
        f"Data: model.datasets.periodic, {args.series} series ({len(task.train)} for training, "
        f"{len(task.test)} held out). Model: default architecture{f' with {overrides}' if overrides else ''}, "
        f"{fitted.config.epochs} epochs "
        f"({'loaded' if args.load else f'{train_s:.0f} s'}), "
        f"horizon {fitted.horizon:.2f} s, obs_std {fitted.config.obs_std}. {args.samples} samples per forecast. "
        f"torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}.",
        "",
        *table(rows, fitted.horizon),
        "",
        "Targets: the 90% band covers 85-95% of held-out values, the 50% band 45-55%.",
        "",
        f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} python benchmarks/calibration_bench.py "
        f"--series {args.series} --epochs {args.epochs} --samples {args.samples}"
        f"{''.join(f' --set {item}' for item in args.set)}`",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

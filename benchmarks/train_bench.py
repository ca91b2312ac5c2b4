"""Training throughput (windows per second) and time to a fixed validation MSE, the way a worker trains.

The data go through the worker's own path: series written to a SQLite database, read back and split by time by
service.training.trainer.load_sequences, the window the service picks when the config names none (64 mean gaps), then
model.fit with the service's default ModelConfig. Throughput counts the training windows of every epoch.

    OMP_NUM_THREADS=2 python benchmarks/train_bench.py                  # writes benchmarks/results/train.md
    python benchmarks/train_bench.py --device cuda --budget-s 90       # on a GPU: benchmarks/results/train-cuda.md

Data: `--series` series of `--points` irregular times (gaps uniform in [0.5, 1.5] minutes), two channels of
sums of sines (periods of hours) plus noise (std 0.05), 20% of values missing. The table gives the time to reach
several validation MSEs, beside the MSE of predicting each channel's mean (what "learned nothing" scores).
"""

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import ModelConfig, fit
from service import storage
from service.storage.db import make_engine, migrate
from service.training import trainer
from service.training.request import DEFAULT_WINDOW_POINTS

DEFAULTS = ModelConfig()

T0_US = 1_767_225_600_000_000


def write_data(engine, n_series: int, points: int, seed: int) -> list[str]:
    """Series written through the service's storage write path; returns their keys."""
    rng = np.random.default_rng(seed)
    keys = []
    for s in range(n_series):
        record = storage.create_series(engine, f"bench-{s}", ["x", "y"], "", {})
        t_s = np.cumsum(rng.uniform(30, 90, points))
        phase = rng.uniform(0, 2 * np.pi, 2)
        x = np.sin(2 * np.pi * t_s / 7200 + phase[0]) + 0.5 * np.sin(2 * np.pi * t_s / 2700)
        y = np.cos(2 * np.pi * t_s / 5400 + phase[1])
        ch, ts, vs = [], [], []
        for k, v in enumerate((x, y)):
            keep = rng.random(points) > 0.2
            ch.append(np.full(keep.sum(), k))
            ts.append(T0_US + np.round(t_s[keep] * 1e6).astype(np.int64))
            vs.append((v + 0.05 * rng.standard_normal(points))[keep])
        storage.upsert_observations(engine, record.id, ["x", "y"], np.concatenate(ch), np.concatenate(ts),
                                    np.concatenate(vs))
        keys.append(record.key)
    return keys


def windows_per_epoch(sequences, window: float) -> int:
    """As model/windows.py draws them: about duration / window per sequence (at least one)."""
    return sum(max(1, round((s.times[-1] - s.times[0]) / window)) for s in sequences)


def run(args: argparse.Namespace, gradient: str, sequences, validation, window: float) -> dict:
    config = ModelConfig(frame="global", epochs=args.epochs, window=window, gradient=gradient, device=args.device,
                         seed=args.seed)
    trace: list[tuple[int, float, float]] = []
    started = time.perf_counter()

    def progress(epoch: int, _epochs: int, _loss: float, val_mse: float | None) -> None:
        trace.append((epoch, time.perf_counter() - started, val_mse))
        print(f"  {gradient} epoch {epoch}: {trace[-1][1]:.1f} s, val MSE {val_mse:.4f}", flush=True)

    def stop() -> bool:
        return time.perf_counter() - started > args.budget_s

    try:
        fit(sequences, config, validation=validation, progress=progress, should_stop=stop)
    except Exception as exc:  # TrainingCancelled at the time budget; anything else is reported as such
        if type(exc).__name__ != "TrainingCancelled":
            raise
    per_epoch = windows_per_epoch(sequences, window)
    seconds = trace[-1][1]
    reached = {target: next(((e, t) for e, t, v in trace if v is not None and v <= target), None)
               for target in args.targets}
    return {"gradient": gradient, "epochs": len(trace), "seconds": seconds,
            "windows_per_s": per_epoch * len(trace) / seconds, "windows_per_epoch": per_epoch,
            "best_val_mse": min(v for _, _, v in trace), "reached": reached}


def mean_baseline(sequences, validation) -> float:
    """Validation MSE of predicting each channel's training mean: what a model must beat to have learned anything."""
    mean = np.nanmean(np.concatenate([s.values for s in sequences]), axis=0)
    err = np.concatenate([s.values for s in validation]) - mean
    return float(np.nanmean(err**2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--targets", default="0.5,0.4,0.3",
                        help="validation MSEs (original units) whose time to reach is reported")
    parser.add_argument("--budget-s", type=float, default=150.0, help="stop each run after this many seconds")
    parser.add_argument("--gradients", default="adjoint,backprop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (ModelConfig.device)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: benchmarks/results/train.md, or train-cuda.md with --device cuda")
    args = parser.parse_args()
    if args.out is None:
        name = "train.md" if args.device == "cpu" else f"train-{args.device.split(':')[0]}.md"
        args.out = Path(__file__).parent / "results" / name
    args.targets = [float(x) for x in args.targets.split(",")]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrate(url)
        engine = make_engine(url)
        keys = write_data(engine, args.series, args.points, args.seed)
        t0 = time.perf_counter()
        sequences, validation = trainer.load_sequences(engine, keys, ["x", "y"])
        load_s = time.perf_counter() - t0
        engine.dispose()
    window = DEFAULT_WINDOW_POINTS * float(np.median([np.mean(np.diff(s.times)) for s in sequences]))
    results = [run(args, g, sequences, validation, window) for g in args.gradients.split(",")]

    cpu = f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    if args.device == "cpu":
        device, label = cpu, f"CPU ({torch.get_num_threads()} threads)"
    else:
        label = torch.cuda.get_device_name(torch.device(args.device))
        device = f"GPU: {label}, {cpu}"
    lines = [
        "# Training benchmark",
        "",
        f"`OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '2')} python benchmarks/train_bench.py "
        + " ".join(sys.argv[1:]) + "`",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, {device}. "
        f"Data: {args.series} series × {args.points} irregular times, 2 channels, 20% missing; "
        f"{sum(s.times.size for s in sequences)} training times, window {window / 60:.0f} min "
        f"(service default: {DEFAULT_WINDOW_POINTS} mean gaps), the newest 20% of each series validates. "
        f"Reading and splitting the series from SQLite took {load_s * 1000:.0f} ms. "
        f"Default ModelConfig otherwise ({DEFAULTS.encoder} encoder, {DEFAULTS.solver}, latent {DEFAULTS.latent_dim}, "
        f"batch {DEFAULTS.batch_size}, IWAE k={DEFAULTS.iwae_samples}, at most {args.epochs} epochs); "
        f"each run capped at "
        f"{args.budget_s:.0f} s.",
        "",
        f"Validation MSE of predicting each channel's training mean: {mean_baseline(sequences, validation):.3f}.",
        "",
        "| device | gradient | windows/epoch | epochs run | windows/s | best val MSE | "
        + " | ".join(f"time to val MSE ≤ {t}" for t in args.targets) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(args.targets),
    ]
    for r in results:
        reached = " | ".join(f"{hit[1]:.1f} s (epoch {hit[0]})" if hit else "not reached"
                             for hit in r["reached"].values())
        lines.append(f"| {label} | {r['gradient']} | {r['windows_per_epoch']} | "
                     f"{r['epochs']} | {r['windows_per_s']:.1f} | {r['best_val_mse']:.4f} | {reached} |")
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Does a GPU pay? Time to reach the 2-core CPU's best validation error on a panel of 1,000 series.

The data: model.datasets.panel, 1,000 irregular series of about 216 points (each its own level, trend and cycle
period, a shared daily cycle, AR(1) noise): 800 train, 200 validate. The model: the default ModelConfig in the
global frame (one normalisation for the panel, windows of one day drawn from every series each epoch, so the
network does all the forecasting and its validation error falls as it trains), for the device, the batch size and
the seed given. Each run trains through model.fit; its clock starts at the first optimiser step and includes the
per-epoch validation (model.train.evaluate_mse over the 200 held-out series' windows, on the device). A run stops
after `--budget-s` or `--epochs` epochs.

    # the CPU reference, on this machine (writes the JSON that GPU runs compare against)
    OMP_NUM_THREADS=2 python benchmarks/gpu_bench.py --device cpu --batch 50 --budget-s 300 \\
        --out benchmarks/results/gpu-panel-cpu.json
    # on a GPU machine: each batch size in turn, against that reference
    python benchmarks/gpu_bench.py --device cuda --batch 400,1600,1600:backprop,50 --budget-s 75 \\
        --reference benchmarks/results/gpu-panel-cpu.json --out benchmarks/results/gpu-panel-cuda.json

The markdown table goes beside the JSON (same name, .md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import ModelConfig, datasets, fit
from model.errors import TrainingCancelled

TOLERANCE = 1.05  # "reached the reference" = within 5 % of its best validation error


WINDOW_S = 24 * datasets.HOUR


def run(task: datasets.Task, device: str, batch: int, gradient: str, epochs: int, budget_s: float,
        seed: int) -> dict:
    """One training run; returns its trace [(seconds since the first step, epoch, val MSE)] and totals."""
    config = ModelConfig(frame="global", window=WINDOW_S, device=device, batch_size=batch, gradient=gradient,
                         epochs=epochs, seed=seed)
    train, validation = task.train[:int(0.8 * len(task.train))], task.train[int(0.8 * len(task.train)):]
    clock: dict[str, float] = {}
    trace: list[tuple[float, int, float]] = []

    def should_stop() -> bool:
        now = time.perf_counter()
        clock.setdefault("first_step", now)
        return now - clock["first_step"] > budget_s

    def progress(step: int, _total: int, _loss: float, val: float | None) -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        trace.append((round(time.perf_counter() - clock["first_step"], 3), step, float("nan") if val is None
                      else float(val)))
        print(f"  {device} batch {batch} {gradient}: epoch {step}, {trace[-1][0]:.1f} s, "
              f"val MSE {trace[-1][2]:.4f}", flush=True)

    started = time.perf_counter()
    try:
        fit(train, config, validation=validation, progress=progress, should_stop=should_stop)
        finished = True
    except TrainingCancelled:
        finished = False
    return {"device": device, "batch": batch, "gradient": gradient, "epochs_asked": epochs, "budget_s": budget_s,
            "finished": finished,
            "setup_s": round(clock.get("first_step", started) - started, 3), "trace": trace,
            "best": min((v for _, _, v in trace), default=float("nan"))}


def time_to(trace: list, target: float) -> tuple[float, int] | None:
    """(seconds, epoch) of the first evaluation at or below `target`."""
    return next(((s, step) for s, step, v in trace if v <= target), None)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({torch.get_num_threads()} threads, {platform.machine()})"


def table(runs: list[dict], reference: dict | None) -> list[str]:
    lines = []
    target = ref_time = None
    if reference is not None:
        best, target = reference["best"], TOLERANCE * reference["best"]
        ref_time = time_to(reference["trace"], target)
        assert ref_time is not None  # a run always reaches its own best
        lines += [f"Reference: {reference['name']}, batch {reference['batch']}, {reference['gradient']}: best "
                  f"validation MSE {best:.4f}; it first came within 5% of that ({target:.4f}) at {ref_time[0]:.1f} s "
                  f"(epoch {ref_time[1]}). Target: ≤ {target:.4f} in ≤ {ref_time[0] / 5:.1f} s (a fifth of that).",
                  ""]
    lines += ["| device | batch | gradient | epochs (asked) | best val MSE | time to best | time to reference ±5% "
              "| ÷ reference time |",
              "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        last = r["trace"][-1] if r["trace"] else (0.0, 0, float("nan"))
        at_best = time_to(r["trace"], r["best"])
        reached = ratio = "—"
        if target is not None and ref_time is not None:
            hit = time_to(r["trace"], target)
            if hit is not None:
                reached, ratio = f"{hit[0]:.1f} s (epoch {hit[1]})", f"{hit[0] / ref_time[0]:.2f}"
            else:
                reached = f"not in {last[0]:.0f} s"
        lines.append(f"| {r['name']} | {r['batch']} | {r['gradient']} | {last[1]} ({r['epochs_asked']}) | "
                     f"{r['best']:.4f} | {at_best[0]:.1f} s (epoch {at_best[1]}) | {reached} | {ratio} |"
                     if at_best else
                     f"| {r['name']} | {r['batch']} | {r['gradient']} | 0 | — | — | — | — |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", default="50", help="comma-separated runs, each a batch size or "
                        "batch:gradient (adjoint or backprop; the default config's gradient otherwise)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--budget-s", type=float, default=600.0, help="each run's training time at most")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", type=Path, help="a CPU run's JSON to compare against")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    task = datasets.panel(n=args.series, seed=args.seed)
    reference = None if args.reference is None else json.loads(args.reference.read_text())["runs"][0]
    runs = []
    for item in args.batch.split(","):
        batch, _, gradient = item.partition(":")
        result = run(task, args.device, int(batch), gradient or ModelConfig().gradient, args.epochs, args.budget_s,
                     args.seed)
        result["name"] = device_name(args.device)
        runs.append(result)
        args.out.parent.mkdir(parents=True, exist_ok=True)  # written after every run: a cut-off run keeps the rest
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "torch": torch.__version__,
                                        "runs": runs}, indent=1))
        lines = [f"# GPU benchmark: {args.series} series (model.datasets.panel)", "",
                 f"`{' '.join(sys.argv)}`", "",
                 f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}. Each run's clock "
                 "starts at its first optimiser step; the per-epoch validation included.", "",
                 *table(runs, reference), ""]
        args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(table(runs, reference)))


if __name__ == "__main__":
    main()

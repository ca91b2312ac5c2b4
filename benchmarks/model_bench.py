"""Latent ODE benchmarks: test error beside LOCF / linear / GP baselines, time, solver NFE, adjoint memory.

    python benchmarks/model_bench.py periodic-interp periodic-extrap --gradients adjoint backprop
    python benchmarks/model_bench.py spirals-50 lotka-volterra --quick
    python benchmarks/model_bench.py memory

Every run adds its rows to benchmarks/results/model.json (keyed by task, method and mode) and rewrites
benchmarks/results/model.md from all rows there. Runs use one torch thread by default (so that two runs can share
the 2-core machine; `--threads 2`, as the issue's reference figures, is 1.2x faster for a run alone): the 1-minute
load average is recorded beside each timing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import (
    ModelConfig,
    datasets,
    fit,
    forecast_batch,
    save,
)
from model.baselines import gp_forecast, linear_forecast, locf_forecast
from model.train import batch_loss
from model.windows import draw_examples

RESULTS = Path(__file__).resolve().parent / "results"
ARTIFACTS = Path(__file__).resolve().parent / "out"  # trained models (git-ignored)

# What each task changes from the default ModelConfig (one model per task, as the reference trains).
TASK_CONFIG = {
    # the reference's interpolation training: the encoder sees a random half of each whole series
    "periodic-interp": {"context_fraction": 1.0, "context_keep": 0.5, "horizon_factor": 2.0},
    "periodic-extrap": {},
    "spirals-30": {},
    "spirals-50": {},
    "spirals-100": {},
    "lotka-volterra": {},
}
ANCHORS = {  # the issue's reference figures (MSE unless the metric says RMSE)
    "periodic-interp": "ref. 0.0037 (100 ep, 570 s); target <= 0.0037 in <= 570 s adjoint, <= 190 s backprop",
    "periodic-extrap": "ref. 0.0093 (100 ep, 245 s); target <= 0.0045 in <= 245 s adjoint, <= 82 s backprop",
    "spirals-30": "Chen et al. RMSE 0.1642",
    "spirals-50": "Chen et al. RMSE 0.1502 (target)",
    "spirals-100": "Chen et al. RMSE 0.1346",
    "lotka-volterra": "",
}


def make_task(name: str, seed: int = 0) -> datasets.Task:
    if name.startswith("periodic-"):
        return datasets.periodic(name.split("-")[1], seed=seed)
    if name.startswith("spirals-"):
        return datasets.spirals(int(name.split("-")[1]), seed=seed)
    if name == "lotka-volterra":
        return datasets.lotka_volterra(seed=seed)
    raise SystemExit(f"unknown task {name!r}; known: {', '.join([*TASK_CONFIG, 'memory'])}")


def load_average() -> float:
    return os.getloadavg()[0]


def score(forecasts, test) -> dict:
    err = np.concatenate([(f.mean - truth).reshape(-1) for f, (_, _, truth) in zip(forecasts, test, strict=True)])
    mse = float(np.mean(err**2))
    return {"mse": mse, "rmse": float(np.sqrt(mse))}


def run_baselines(task: datasets.Task) -> list[dict]:
    rows = []
    for method, fn in (("LOCF", locf_forecast), ("linear", linear_forecast), ("GP", gp_forecast)):
        started = time.perf_counter()
        forecasts = [fn(ctx, at) for ctx, at, _ in task.test]
        rows.append({"method": method, **score(forecasts, task.test), "wall_s": time.perf_counter() - started})
    return rows


def training_step_nfe(fitted, task: datasets.Task) -> tuple[int, int]:
    """Function evaluations of one training step (batch_size windows) at the trained weights: forward, backward."""
    net, config = fitted.network, fitted.config
    examples = draw_examples(task.train, fitted.normaliser, config, np.random.default_rng(0))[: config.batch_size]
    net.train()
    before = net.dynamics.nfe
    loss, _ = batch_loss(net, examples, config, 1.0, torch.Generator().manual_seed(0), np.random.default_rng(0))
    middle = net.dynamics.nfe
    loss.backward()
    net.zero_grad(set_to_none=True)
    net.eval()
    return middle - before, net.dynamics.nfe - middle


def run_model(task: datasets.Task, gradient: str, epochs: int | None, samples: int,
              validate: bool, overrides: dict) -> tuple[dict, object]:
    config = ModelConfig.from_dict({"frame": "global", "gradient": gradient, **TASK_CONFIG[task.name], **overrides})
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    loads = []

    def progress(epoch, total, loss, val):
        loads.append(load_average())
        print(f"  {task.name} {gradient} epoch {epoch}/{total} loss {loss:.4g} val MSE {val or float('nan'):.4g} "
              f"({time.perf_counter() - started:.0f} s, load {loads[-1]:.1f})", flush=True)

    # validation: the task's own validation series (same generator and time grid, never test), else 100 series
    # from the generator with another seed
    validation = (list(task.validation) or make_task(task.name, seed=1).train[:100]) if validate else None
    started = time.perf_counter()
    fitted = fit(task.train, config, validation=validation, progress=progress)
    wall = time.perf_counter() - started
    started = time.perf_counter()
    forecasts = []
    for i in range(0, len(task.test), 50):
        chunk = task.test[i:i + 50]
        # windows start at the series' first time even where the test context misses it (periodic-interp)
        requests = [(c, a, min(c.times[0], a.min())) for c, a, _ in chunk]
        forecasts += forecast_batch(fitted, requests, samples=samples, seeds=range(i, i + 50))
    forecast_s = time.perf_counter() - started
    nfe_fwd, nfe_bwd = training_step_nfe(fitted, task)
    row = {
        "method": f"latent ODE ({', '.join([gradient, *(f'{k}={v}' for k, v in overrides.items())])})",
        **score(forecasts, task.test), "wall_s": wall,
        "epochs": len(fitted.history), "s_per_epoch": wall / len(fitted.history), "nfe_fwd": nfe_fwd,
        "nfe_bwd": nfe_bwd, "forecast_s": forecast_s, "load": float(np.mean(loads)), "validated": validate,
        "config": {k: v for k, v in config.to_dict().items() if v != ModelConfig().to_dict()[k]},
    }
    return row, fitted


# --- memory: peak RSS of one training step, adjoint vs backprop, 1x and 10x time span (fresh process each) ---

def memory_probe(artifact: str, gradient: str, stretch: float) -> dict:
    from model import load

    fitted = load(artifact)
    config = dataclasses.replace(fitted.config, gradient=gradient, train_output_times=None)
    task = datasets.periodic("extrap", n=100)
    seqs = [type(s)(s.times * stretch, s.values, s.channels) for s in task.train[:50]]
    examples = draw_examples(seqs, fitted.normaliser, config, np.random.default_rng(0))
    net = fitted.network
    net.train()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (VmHWM)
    base = _status_kib("VmRSS")
    before = net.dynamics.nfe
    loss, _ = batch_loss(net, examples, config, 1.0, torch.Generator().manual_seed(0))
    loss.backward()
    return {"gradient": gradient, "stretch": stretch, "peak_mib": (_status_kib("VmHWM") - base) / 1024,
            "nfe": net.dynamics.nfe - before}


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(key)


def run_memory(artifact: str) -> list[dict]:
    rows = []
    for gradient in ("adjoint", "backprop"):
        for stretch in (1.0, 10.0):
            out = subprocess.run([sys.executable, __file__, "--probe", artifact, gradient, str(stretch)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print("  memory", rows[-1], flush=True)
    return rows


# --- results files ---

def store(key: str, row: dict) -> None:
    """Add one row to model.json (under a lock: several benchmark runs may share it) and re-render model.md."""
    import fcntl

    path = RESULTS / "model.json"
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "model.lock", "w") as lock:  # git-ignored folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[key] = row
        path.write_text(json.dumps(data, indent=1, sort_keys=True))
        render(data)


def _num(value, fmt: str) -> str:
    return "" if value is None or value != value else format(value, fmt)


def render(data: dict) -> None:
    lines = ["# Latent ODE benchmarks", "",
             "Written by `python benchmarks/model_bench.py` (see docs/benchmarks.md). 2-core CPU shared with other "
             "jobs, torch 2.13, "
             "one torch thread unless `threads` says otherwise; `load` is the mean 1-minute load average while "
             "training (2.0 = both cores busy). "
             "NFE: dynamics evaluations of one training step at the trained weights (forward / adjoint backward; "
             "backprop's backward differentiates the forward steps and evaluates nothing).", "",
             "Rows are kept until a run with the same task, method and mode replaces them, so older rows may come "
             "from older code: `measured` says when (UTC) and `code` which commit (+: with uncommitted changes to "
             "model/). Rows before 2026-11-25 21:40 predate the current initialisation and learning-rate schedule; "
             "adjoint rows before 22:23 used torchdiffeq's odeint_adjoint rather than model/solver/adjoint.py; "
             "rows before 23:40 solved with torchdiffeq's dopri5 rather than model/solver/rk.py's (the same steps, "
             "slower).", "",
             "| task | method | mode | test MSE | test RMSE | epochs | train s | s/epoch | NFE fwd/bwd | threads "
             "| load | measured | code | reference / target |", "|" + "---|" * 14]
    order = {"latent ODE (adjoint)": 0, "latent ODE (backprop)": 1, "GP": 2, "linear": 3, "LOCF": 4}
    keys = sorted((k for k in data if not k.startswith("memory")),
                  key=lambda k: (data[k]["task"], data[k]["mode"], order.get(data[k]["method"], 9)))
    for key in keys:
        r = data[key]
        latent = r["method"].startswith("latent")
        nfe = f"{r['nfe_fwd']}/{r['nfe_bwd'] or '-'}" if "nfe_fwd" in r else ""
        lines.append(
            f"| {r['task']} | {r['method']} | {r['mode']} | {_num(r['mse'], '.4g')} | {_num(r['rmse'], '.4g')} | "
            f"{r.get('epochs', '')} | {_num(r['wall_s'], '.0f')} | {_num(r.get('s_per_epoch'), '.2f')} | {nfe} | "
            f"{r.get('threads', 1)} | {_num(r.get('load'), '.1f')} | {r.get('date', '')[:16].replace('T', ' ')} | "
            f"{r.get('code', '')} | "
            f"{ANCHORS.get(r['task'], '') if latent else ''} |")
    if "memory" in data:
        lines += ["", "Peak memory (RSS high-water mark above the process's resting RSS) of one training step: 50 "
                  "periodic windows, k = 3, all 100 output times, the trained periodic-extrap model; 10x = the same "
                  "windows stretched to 10x the time span (so more solver steps):", "",
                  "| gradient | span | peak MiB | NFE (fwd+bwd) |", "|---|---|---|---|"]
        for m in data["memory"]["rows"]:
            lines.append(f"| {m['gradient']} | {m['stretch']:g}x | {m['peak_mib']:.1f} | {m['nfe']} |")
    (RESULTS / "model.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    if sys.argv[1:] == ["render"]:
        render(json.loads((RESULTS / "model.json").read_text()))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        torch.set_num_threads(1)
        print(json.dumps(memory_probe(sys.argv[2], sys.argv[3], float(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="+", help=f"any of {', '.join([*TASK_CONFIG, 'memory'])}")
    parser.add_argument("--gradients", nargs="+", default=["adjoint", "backprop"], choices=["adjoint", "backprop"])
    parser.add_argument("--quick", action="store_true", help="5 epochs, 200 training series, 50 test series")
    parser.add_argument("--epochs", type=int, default=None, help="override ModelConfig.epochs")
    parser.add_argument("--samples", type=int, default=32, help="forecast samples per test series")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--validate", action="store_true",
                        help="keep the epoch with the best MSE on validation series (never test); costs time")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help='a ModelConfig field for this run, e.g. --set encoder=\'"ode_rnn"\' (named in the row)')
    args = parser.parse_args()
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    torch.set_num_threads(args.threads)
    code = code_version()

    def stamped(row: dict) -> dict:
        return {**row, "date": _now(), "code": code, "threads": args.threads}

    RESULTS.mkdir(parents=True, exist_ok=True)
    mode = "quick" if args.quick else "full"
    for name in args.tasks:
        if name == "memory":
            artifact = ARTIFACTS / "periodic-extrap-backprop.safetensors"
            if not artifact.exists():
                raise SystemExit(f"memory needs a trained periodic model: run periodic-extrap first ({artifact})")
            store("memory", stamped({"rows": run_memory(str(artifact))}))
            continue
        task = make_task(name)
        epochs = args.epochs
        if args.quick:
            task = dataclasses.replace(task, train=task.train[:200], test=task.test[:50])
            epochs = epochs or 5
        print(f"{name}: {len(task.train)} training series, {len(task.test)} test", flush=True)
        if not args.no_baselines:
            for row in run_baselines(task):
                store(f"{name}/{row['method']}/{mode}", stamped({"task": name, "mode": mode, **row}))
                print(f"  {row['method']}: MSE {row['mse']:.4g}", flush=True)
        for gradient in args.gradients:
            row, fitted = run_model(task, gradient, epochs, args.samples, args.validate, overrides)
            store(f"{name}/{row['method']}/{mode}", stamped({"task": name, "mode": mode, **row}))
            if not args.quick:
                ARTIFACTS.mkdir(exist_ok=True)
                suffix = "".join(f"-{k}={v}" for k, v in overrides.items())
                save(fitted, ARTIFACTS / f"{name}-{gradient}{suffix}.safetensors")
            print(f"  {row['method']}: MSE {row['mse']:.4g} in {row['wall_s']:.0f} s", flush=True)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def code_version() -> str:
    """The commit whose model/ and benchmarks/ made a row, '+' when those folders had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "model", "benchmarks/model_bench.py"],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return commit + ("+" if dirty else "")


if __name__ == "__main__":
    main()

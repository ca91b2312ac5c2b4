"""Real-data benchmark: the latent ODE against classical baselines on thinned public series.

    python benchmarks/realdata_bench.py                          # everything, seeds 0,1,2 (resumes from cache)
    python benchmarks/realdata_bench.py --no-model --seeds 0     # baselines only: a few minutes
    python benchmarks/realdata_bench.py --only nile --frame global --config '{"epochs": 3}'
    python benchmarks/realdata_bench.py --held-out               # the eight data sets no default was chosen on

Data sets (benchmarks/realdata/data.py; the `bench` extra: pip install -c constraints.txt -e '.[bench]'):
elnino, nile, fertility (50 countries: a panel), taylor, woolyrnq, heartrate, msft, uschange (5 channels), pbs;
with --held-out instead: airpassengers, wineind, ausbeer, austres, lynx, sunspots, co2, realgdp, on which no default
of the model was chosen (a check that a change helps series it was not made on; no targets are judged there).
Protocol (benchmarks/realdata/protocol.py): per seed, 60% of each series' times kept (several channels: each value
dropped with probability 0.2), the first 80% of the time range for training less 20% of its points held out for
interpolation, the rest forecast. Model: ModelConfig(frame="local", horizon=<test span, seconds>) unless
--frame/--steps/--time-limit/--config say otherwise.

Each (data set, series, seed) is cached as JSON under benchmarks/out/realdata/ (git-ignored): the baselines keyed by
the protocol version, the model by a hash of its config and its scoring's version (evaluate.SCORING), so changing
the model's config never recomputes the baselines and an interrupted run resumes. Writes
benchmarks/results/realdata.md and realdata.json (with --held-out: realdata-held-out.md and .json) for the data
sets and seeds asked for.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import model  # noqa: E402
from benchmarks.realdata import evaluate, report  # noqa: E402
from benchmarks.realdata.data import HELD_OUT, LOADERS, PANEL, PANEL_SIZE  # noqa: E402
from benchmarks.realdata.protocol import PROTOCOL, Series, Split, thin  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "benchmarks" / "out" / "realdata"


def model_config(args: argparse.Namespace, horizon: float) -> model.ModelConfig:
    """ModelConfig(frame, horizon) with --steps, --time-limit and then --config's fields on top."""
    fields: dict = {"frame": args.frame, "horizon": horizon}
    if args.steps is not None:
        fields["train_steps"] = args.steps
    if args.time_limit is not None:
        fields["time_limit"] = args.time_limit
    return model.ModelConfig.from_dict({**fields, **args.config})


def config_key(config: model.ModelConfig, samples: int) -> str:
    """A short hash of everything that changes the model's scores besides the data."""
    text = json.dumps({"protocol": PROTOCOL, "scoring": evaluate.SCORING, "config": config.to_dict(),
                       "samples": samples}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cached(path: Path, compute) -> dict:
    """The JSON at `path`, else compute() written there first (whole or not at all)."""
    if path.exists():
        return json.loads(path.read_text())
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(result, indent=1))
    partial.replace(path)
    return result


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def baseline_part(series: Series, split: Split, seed: int) -> dict:
    path = CACHE / _slug(series.dataset) / _slug(series.name) / f"seed{seed}-baselines-{_slug(PROTOCOL)}.json"
    return cached(path, lambda: evaluate.baseline_scores(series, split))


def model_part(series: Series, split: Split, seed: int, args: argparse.Namespace) -> dict:
    """The model's scores on one split (fitted on its training points), from cache when there; {} when the model
    raised (printed, not cached: the model may be fixed)."""
    config = model_config(args, split.horizon)
    folder = CACHE / _slug(series.dataset) / _slug(series.name)
    path = folder / f"seed{seed}-model-{config_key(config, args.samples)}.json"

    def compute() -> dict:
        sequence = model.Sequence(split.train_t, split.train_x, series.channels)
        fitted, seconds = evaluate.fit_model([sequence], config)
        return {"config": config.to_dict(), "methods": evaluate.model_scores(fitted, split, series.channels,
                                                                              args.samples, seconds)}
    try:
        return cached(path, compute)["methods"]
    except model.ModelError as error:
        print(f"  {series.dataset}/{series.name} seed {seed}: model failed: {error!r}", flush=True)
        return {"model": {"failed": f"{type(error).__name__}: {error}"}}


def panel_part(countries: list[Series], splits: list[Split], seed: int, args: argparse.Namespace) -> dict:
    """One model fitted on every country's training points, scored on each: {country: {"panel": scores}}."""
    config = model_config(args, max(s.horizon for s in splits))
    path = CACHE / _slug(PANEL) / "_panel" / f"seed{seed}-model-{config_key(config, args.samples)}.json"

    def compute() -> dict:
        sequences = [model.Sequence(s.train_t, s.train_x, c.channels, c.name)
                     for c, s in zip(countries, splits, strict=True)]
        fitted, seconds = evaluate.fit_model(sequences, config)
        scores = {c.name: evaluate.model_scores(fitted, s, c.channels, args.samples, seconds, c.name)
                  for c, s in zip(countries, splits, strict=True)}
        return {"config": config.to_dict(), "countries": scores}
    try:
        scores = cached(path, compute)["countries"]
    except model.ModelError as error:
        print(f"  {PANEL} panel seed {seed}: model failed: {error!r}", flush=True)
        return {c.name: {"panel": {"failed": f"{type(error).__name__}: {error}"}} for c in countries}
    return {name: {"panel": parts["model"]} for name, parts in scores.items()}


def run_dataset(name: str, args: argparse.Namespace) -> list[dict]:
    """Every (series, seed) record of one data set."""
    series_list = data_sets(args)[name]()
    records = []
    for seed in args.seeds:
        splits = [thin(s, seed) for s in series_list]
        panel = {}
        if name == PANEL and not args.no_model:
            panel = panel_part(series_list, splits, seed, args)
        for k, (series, split) in enumerate(zip(series_list, splits, strict=True)):
            methods = dict(baseline_part(series, split, seed))
            if not args.no_model and (name != PANEL or k < args.panel_countries):
                methods |= model_part(series, split, seed, args)
            methods |= panel.get(series.name, {})
            records.append({"dataset": name, "series": series.name, "seed": seed, "methods": methods,
                            "points": {"train": int(split.train_t.size), "held": int(split.held_t.size),
                                       "test": int(split.test_t.size)}, "horizon_s": split.horizon})
        print(f"{name} seed {seed}: {len(series_list)} series done", flush=True)
    return records


def code_version() -> str:
    """The commit, "+" when model/ or this benchmark's code has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        paths = ["model", "benchmarks/realdata", "benchmarks/realdata_bench.py"]
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return commit + ("+" if dirty else "")


def header(args: argparse.Namespace) -> list[str]:
    command = "python benchmarks/realdata_bench.py " + " ".join(sys.argv[1:])
    model_line = ("Model: not run (--no-model)." if args.no_model else
                  f"Model: ModelConfig(frame={args.frame!r}, horizon=<test span, seconds>"
                  + (f", train_steps={args.steps}" if args.steps is not None else "")
                  + (f", time_limit={args.time_limit}" if args.time_limit is not None else "")
                  + "".join(f", {k}={v!r}" for k, v in args.config.items()) + f"), {args.samples} samples.")
    title = "# Real-data benchmark (benchmarks/realdata_bench.py)"
    if args.held_out:
        title += (": the held-out data sets\n\nNo default of the model was chosen on these series (the finer Fourier "
                  "pairs a season may carry were added after seeing wineind's loss here), and no target is judged "
                  "on them: they show whether what helps the targets' data sets helps others.")
    lines = [title, "",
             f"Command: `{command.strip()}`; seeds {','.join(map(str, args.seeds))}; protocol {PROTOCOL}; "
             f"written {datetime.datetime.now(datetime.UTC).isoformat(timespec='minutes')} from code {code_version()}.",
             "", model_line]
    if PANEL in args.only and not args.no_model:
        lines += ["", f"{PANEL}: per-country models on the first {min(args.panel_countries, PANEL_SIZE)} of "
                  f"{PANEL_SIZE} countries (--panel-countries); the panel model (one model on all {PANEL_SIZE}) "
                  f"and the baselines on all of them."]
    lines += ["", "rMAE: MAE ÷ the last value's MAE. MAE ÷ best baseline: ÷ the lowest MAE among the baselines "
              "(everything but model, classical and panel) on that seed. MAE and interpolation MSE are in the "
              "data's units, except on uschange (5 channels): there each channel's error is in units of its "
              "training std, then averaged. Coverage: share of test points inside the 90% band (model: its 5/95% "
              "quantiles; GP: mean ± 1.645 std), pooled over seeds. Interval score: that band's width plus 20 times "
              "the distance by which a test point falls outside it, averaged over the points in the MAE's units "
              "(lower is better; a wide band that holds everything scores badly). Spread: std of the forecast "
              "mean over the test points ÷ the truth's std there. fit s: fitting (baselines: and forecasting) "
              "seconds, mean over seeds. Other columns: means over the seeds where the method ran."]
    return lines


def _finite(value):
    """JSON has no NaN: None instead, all the way down."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def data_sets(args: argparse.Namespace) -> dict:
    """The loaders this run draws on: the targets' data sets, or with --held-out the others."""
    return HELD_OUT if args.held_out else LOADERS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--held-out", action="store_true",
                    help=f"the data sets no default was chosen on ({','.join(HELD_OUT)}) instead of the targets'")
    ap.add_argument("--only", type=lambda s: s.split(","),
                    help=f"data sets, comma-separated (default all: {','.join(LOADERS)}; with --held-out, all of "
                         "those)")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    ap.add_argument("--no-model", action="store_true", help="baselines only")
    ap.add_argument("--frame", default="local", choices=["local", "global"])
    ap.add_argument("--steps", type=int, help="ModelConfig.train_steps")
    ap.add_argument("--time-limit", type=float, help="ModelConfig.time_limit, seconds")
    ap.add_argument("--config", type=json.loads, default={}, help="JSON object merged into the ModelConfig last")
    ap.add_argument("--samples", type=int, default=100, help="forecast samples")
    ap.add_argument("--panel-countries", type=int, default=PANEL_SIZE,
                    help=f"per-country models for the first N of the {PANEL_SIZE} {PANEL} countries (default all; "
                         f"each is a fit per seed, a few seconds: too short to weigh the network, none is trained; "
                         f"the panel model always sees all {PANEL_SIZE})")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    args = ap.parse_args(argv)
    known = data_sets(args)
    args.only = args.only or list(known)
    unknown = [name for name in args.only if name not in known]
    if unknown:
        ap.error(f"unknown data set(s) {unknown}; known{' with --held-out' if args.held_out else ''}: "
                 f"{', '.join(known)}")
    if not isinstance(args.config, dict):
        ap.error("--config must be a JSON object")
    return args


def require_bench_extra() -> None:
    """Without the libraries the data ship in (and ETS/ARIMA come from), say how to install them."""
    import importlib.util

    missing = [m for m in ("statsmodels", "pmdarima", "sktime") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: pip install -c constraints.txt -e '.[bench]'")


def main() -> None:
    args = parse_args()
    require_bench_extra()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        records = [r for name in args.only for r in run_dataset(name, args)]
    table = report.rows(records)
    checks = [] if args.held_out else report.targets(table)
    text = report.markdown(table, checks, header(args))
    stem = "realdata-held-out" if args.held_out else "realdata"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.md").write_text(text)
    raw = {"command": sys.argv[1:], "protocol": PROTOCOL, "code": code_version(), "records": records,
           "rows": table, "targets": [{"target": n, "met": m, "detail": d} for n, m, d in checks]}
    (RESULTS / f"{stem}.json").write_text(json.dumps(_finite(raw), indent=1))
    print(text)


if __name__ == "__main__":
    main()

"""Every candidate classical component's backtest and test errors on the real-data splits: ways of choosing a
component, measured offline in seconds instead of refitting the whole table.

    python benchmarks/component_bench.py --only nile,elnino           # seeds 0,1,2; records cached, then the table
    python benchmarks/component_bench.py --held-out --seeds 0         # realdata_bench's held-out data sets
    python benchmarks/component_bench.py --only fertility --config '{"log_scale": true}'

For each (data set, series, seed) of `realdata_bench.py`'s protocol, a model of that series alone is set up as the
local frame's fit sets it up (its sizes, normaliser, newest and history cut-offs: `model.local.choice_setup`), and
per candidate (`model.backtest.candidates_of`) the record holds its absolute errors in training-std units at every
point of every cut-off of both sets (`model.backtest.candidate_errors`, what `choose_component` scores), each
point's lead past its cut-off, and its classical forecast's MAE on the test span, as the real-data benchmark scores
the model's classical part. It also holds the index `choose_component` takes, and the script stops if `plain`, the
same score recomputed from the record, picks a candidate that scores otherwise: a record says what the model does.

A rule is a function of a record that returns a candidate's index; `RULES` maps names to rules (add one to measure
it). The table gives, per data set and rule, the test MAE ÷ the last value's (rMAE) and ÷ the best baseline's,
means over the seeds, and the median over the data set's series of their MAE (fertility: over its countries). The
baselines are the real-data benchmark's, read from its cache (`realdata_bench.baseline_part`: computed and cached
there first where missing). Records are cached under benchmarks/out/components/ by data set, series, seed and
config (pickle: numpy arrays and the candidates).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import model  # noqa: E402
from benchmarks.realdata import protocol  # noqa: E402
from benchmarks.realdata.data import HELD_OUT, LOADERS  # noqa: E402
from benchmarks.realdata.protocol import Series, Split  # noqa: E402
from benchmarks.realdata_bench import baseline_part  # noqa: E402
from model import backtest  # noqa: E402
from model.frame import SCALE_FLOOR, frame_of  # noqa: E402
from model.local import choice_setup  # noqa: E402

CACHE = ROOT / "benchmarks" / "out" / "components"


def record(series: Series, split: Split, config: model.ModelConfig) -> dict:
    """The candidates of a model of `series` alone, trained on `split`, with their backtest and test errors."""
    sequence = model.Sequence(split.train_t, split.train_x, series.channels)
    setup = choice_setup([sequence], config)
    sets = [c for c in (setup.cutoffs, setup.history) if c]
    candidates = backtest.candidates_of(setup.sizes)
    errors = backtest.candidate_errors([sequence], sets, candidates, setup.norm.std)
    floor = SCALE_FLOOR * setup.norm.std
    test = np.empty(len(candidates))
    for i, candidate in enumerate(candidates):
        frame = frame_of(candidate, split.train_t, split.train_x, floor)
        test[i] = protocol.channel_errors(frame.classical(split.test_t), split.test_x, split.scale)[0]
    chosen = backtest.choose_component([sequence], setup.cutoffs, setup.history, setup.sizes, setup.norm.std)
    return {"series": series.name, "candidates": candidates, "errors": errors, "test": test,
            "leads": [[split.train_t[c.future] - split.train_t[c.end] for c in cuts] for cuts in sets],
            "cutoffs": [[(c.series, c.end, c.future.size) for c in cuts] for cuts in sets],
            "horizon": setup.sizes.horizon, "chosen": candidates.index(chosen)}


def scores(rec: dict) -> np.ndarray:
    """(candidates,) each candidate's score as choose_component computes it, from the record alone."""
    sets = [[backtest.Cutoff(s, end, np.arange(end + 1, end + 1 + n)) for s, end, n in cuts]
            for cuts in rec["cutoffs"]]
    return backtest.candidate_scores(rec["errors"], sets)


def plain(rec: dict) -> int:
    """The model's own rule: the lowest score."""
    return int(np.nanargmin(scores(rec)))


def hindsight(rec: dict) -> int:
    """The candidate with the lowest test error: what no rule can beat."""
    return int(np.argmin(rec["test"]))


RULES: dict[str, Callable[[dict], int]] = {"plain": plain, "hindsight": hindsight}


def cached_record(series: Series, split: Split, seed: int, config: model.ModelConfig) -> dict:
    """record(series, split, config with the split's horizon), from the cache where it is (`split`: seed's)."""
    key = hashlib.sha256(json.dumps(config.to_dict() | {"protocol": protocol.PROTOCOL}, sort_keys=True,
                                    default=str).encode()).hexdigest()[:12]
    path = CACHE / series.dataset / series.name / f"seed{seed}-{key}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    rec = record(series, split, config.replace(horizon=split.horizon))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(rec))
    return rec


def check(rec: dict) -> None:
    """Stop where the record's own score would not take the model's choice (the replication has drifted)."""
    s = scores(rec)
    best = int(np.nanargmin(s))  # plain(rec)
    if not s[best] == s[rec["chosen"]]:
        raise SystemExit(f"{rec['series']}: the record's score picks candidate {best} ({s[best]}), "
                         f"choose_component {rec['chosen']} ({s[rec['chosen']]})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--held-out", action="store_true", help="realdata_bench's held-out data sets")
    ap.add_argument("--only", type=lambda s: s.split(","), help="data sets, comma-separated (default all)")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    ap.add_argument("--config", type=json.loads, default={}, help="JSON object of ModelConfig fields")
    args = ap.parse_args(argv)
    loaders = HELD_OUT if args.held_out else LOADERS
    unknown = sorted(set(args.only or ()) - set(loaders))
    if unknown:
        ap.error(f"unknown data set(s) {unknown}; known: {', '.join(loaders)}")
    config = model.ModelConfig.from_dict({"frame": "local", **args.config})
    print("| data set | rule | rMAE | ÷ best baseline | median MAE over series |\n|---|---|---|---|---|")
    for name in args.only or list(loaders):
        rows: dict[str, dict[str, list[float]]] = {r: {"rmae": [], "ratio": []} for r in RULES}
        per_series: dict[str, dict[str, list[float]]] = {r: {} for r in RULES}
        for series in loaders[name]():
            for seed in args.seeds:
                split = protocol.thin(series, seed)
                rec = cached_record(series, split, seed, config)
                check(rec)
                baselines = baseline_part(series, split, seed)
                best = min(s["mae"] for s in baselines.values() if "mae" in s)
                for rule_name, rule in RULES.items():
                    mae = float(rec["test"][rule(rec)])
                    rows[rule_name]["rmae"].append(mae / baselines["last value"]["mae"])
                    rows[rule_name]["ratio"].append(mae / best)
                    per_series[rule_name].setdefault(series.name, []).append(mae)
        for rule_name in RULES:
            median = np.median([np.mean(v) for v in per_series[rule_name].values()])
            print(f"| {name} | {rule_name} | {np.mean(rows[rule_name]['rmae']):.3f} | "
                  f"{np.mean(rows[rule_name]['ratio']):.3f} | {median:.4g} |")


if __name__ == "__main__":
    main()

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
it). The record also holds the version's baselines (`baseline_record`): a rule may return one's name, as `the
baseline where it backtests better` does (what a service that answered with the baseline wherever the version lost
to it on its backtest would give). A combination (`COMBINATIONS`) returns weights over the candidates instead: its
forecast is their weighted mean (the record holds every candidate's test forecast). With `--gp`, the record also
holds a Gaussian process as one more candidate (`gp_record`): the rule `GP alone` takes it always, `GP where it
backtests best` where its score is the lowest, and the last GP rule only below 0.8x the best candidate's score.
With `--log`, the record also holds the record of the same config with `"log_scale": true` (every candidate fitted
on the log scale where the channel is positive; the same cut-offs): `the log scale always` takes that record's own
choice, `the log scale where it backtests better` the lower scoring of the two choices (the log scale as one more
dimension of the candidates, chosen by the backtest like the rest), and `the mean of both scales' choices` the mean
of the two choices' forecasts.

The table gives, per data set and rule, the test MAE ÷ the last value's (rMAE) and ÷ the best baseline's, means over
the seeds, and over the data set's series (fertility: its countries) the median of their MAE and of their MAE ÷ the
best baseline's (each a mean over the seeds); last, per rule, the median over the data sets of that median series'
ratio. The baselines are the real-data benchmark's, read from its cache (`realdata_bench.baseline_part`: computed
and cached there first where missing). Records are cached under benchmarks/out/components/ by data set, series, seed
and config (pickle: numpy arrays and the candidates).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import pickle
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
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
from model.frame import SCALE_FLOOR, Component, frame_of  # noqa: E402
from model.local import choice_setup  # noqa: E402

CACHE = ROOT / "benchmarks" / "out" / "components"


def record(series: Series, split: Split, config: model.ModelConfig) -> dict:
    """The candidates of a model of `series` alone, trained on `split`, with their backtest and test errors."""
    sequence = model.Sequence(split.train_t, split.train_x, series.channels)
    setup = choice_setup([sequence], config)
    sets = backtest.choice_sets([sequence], setup.cutoffs, setup.history, setup.sizes)
    candidates = backtest.candidates_of(setup.sizes)
    errors = backtest.candidate_errors([sequence], sets, candidates, setup.norm.std)
    floor = SCALE_FLOOR * setup.norm.std
    forecasts = np.stack([frame_of(candidate, split.train_t, split.train_x, floor).classical(split.test_t)
                          for candidate in candidates])
    test = np.array([protocol.channel_errors(f, split.test_x, split.scale)[0] for f in forecasts])
    chosen = backtest.choose_component([sequence], setup.cutoffs, setup.history, setup.sizes, setup.norm.std)
    return {"series": series.name, "candidates": candidates, "errors": errors, "test": test,
            "forecasts": forecasts, "truth": split.test_x, "scale": split.scale,
            "leads": [[split.train_t[c.future] - split.train_t[c.end] for c in cuts] for cuts in sets],
            "cutoffs": [[(c.series, c.end, int(c.future[0]), c.future.size) for c in cuts] for cuts in sets],
            "horizon": setup.sizes.horizon, "chosen": candidates.index(dataclasses.replace(chosen, channels=())),
            "parts": [candidates.index(part) for part in chosen.channels]}


GP_POINTS = 400  # the GP reads at most the newest this many observations of a channel (its fit is cubic in them)


def gp_record(series: Series, split: Split, config: model.ModelConfig) -> dict:
    """A Gaussian process per channel as one more candidate: scikit-learn's, constant x RBF + constant x
    ExpSineSquared at each season the model found + white noise, time in median gaps, its hyperparameters fitted
    once by maximum likelihood on the training data (2 restarts) and then held fixed, as a stored model would
    hold them, while it forecasts each cut-off's future from the observations before it. Its absolute errors on
    the record's cut-offs in training-std units (as `candidate_errors` gives them), and its test forecast."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, ExpSineSquared, WhiteKernel

    sequence = model.Sequence(split.train_t, split.train_x, series.channels)
    setup = choice_setup([sequence], config)
    gap, channels = setup.sizes.gap, split.train_x.shape[1]

    def newest(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen = np.isfinite(x)
        return t[seen][-GP_POINTS:], x[seen][-GP_POINTS:]

    kernels = []
    for c in range(channels):
        t, x = newest(split.train_t, split.train_x[:, c])
        span = max((t[-1] - t[0]) / gap, 1.0)
        kernel = ConstantKernel() * RBF(length_scale=span / 10, length_scale_bounds=(1e-2, 1e2 * span))
        for season in setup.sizes.seasons:
            kernel += ConstantKernel() * ExpSineSquared(periodicity=season / gap, periodicity_bounds="fixed")
        kernel += WhiteKernel(noise_level=0.1)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=2, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            kernels.append(gp.fit(((t - t[-1]) / gap)[:, None], x).kernel_)

    def forecast(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
        out = np.full((at.size, channels), np.nan)
        for c in range(channels):
            t, x = newest(times, values[:, c])
            if t.size == 1:
                out[:, c] = x[0]
            elif t.size:
                gp = GaussianProcessRegressor(kernels[c], normalize_y=True, optimizer=None)
                out[:, c] = gp.fit(((t - t[-1]) / gap)[:, None], x).predict(((at - t[-1]) / gap)[:, None])
        return out

    errors = [[np.abs(forecast(split.train_t[:c.end + 1], split.train_x[:c.end + 1], split.train_t[c.future])
                      - split.train_x[c.future]) / setup.norm.std for c in cuts]
              for cuts in backtest.choice_sets([sequence], setup.cutoffs, setup.history, setup.sizes)]
    return {"errors": errors, "forecast": forecast(split.train_t, split.train_x, split.test_t)}


def scores(rec: dict) -> np.ndarray:
    """(candidates,) each candidate's score as choose_component computes it, from the record alone."""
    return backtest.candidate_scores(rec["errors"], _sets(rec))


def _sets(rec: dict) -> list[list[backtest.Cutoff]]:
    return [[backtest.Cutoff(s, end, np.arange(first, first + n)) for s, end, first, n in cuts]
            for cuts in rec["cutoffs"]]


def plain(rec: dict) -> int:
    """The model's own rule over every channel together (`model.backtest.chosen_index`): the lowest score, an
    undamped trend only where it wins clearly on enough cut-offs, the last value unless that choice beats it
    clearly. On a single channel the model's choice; on several, what its parts replace (`own`)."""
    return backtest.chosen_index(rec["errors"], _sets(rec), rec["candidates"], rec["horizon"])[0]


@dataclass(frozen=True)
class PerChannel:
    """A rule's choice of a candidate per channel (indices), each channel forecast with its own."""

    indices: tuple[int, ...]


def own(rec: dict) -> int | PerChannel:
    """The model's own rule: `plain`, with a part per channel where the channels' own choices differ
    (`model.backtest.channel_choices`)."""
    joint = plain(rec)
    parts = backtest.channel_choices(rec["errors"], _sets(rec), rec["candidates"], rec["horizon"], joint)
    return joint if all(i == joint for i in parts) else PerChannel(tuple(parts))


def lowest_bounded(rec: dict) -> int:
    """The lowest score, an undamped trend only where it wins clearly on enough cut-offs, without the test against
    the last value (the choice before that test)."""
    return backtest.best_candidate(scores(rec), rec["candidates"], rec["horizon"], sum(map(len, rec["cutoffs"])))


def lowest(rec: dict) -> int:
    """The lowest score, whatever the candidate."""
    return int(np.nanargmin(scores(rec)))


def no_undamped_trend(rec: dict) -> int:
    """The lowest score among the candidates without an undamped trend (the choice before they were offered)."""
    undamped = backtest.undamped_trends(rec["candidates"], rec["horizon"])
    return int(np.nanargmin(np.where(undamped, np.nan, scores(rec))))


def hindsight(rec: dict) -> int:
    """The candidate with the lowest test error: what no rule can beat."""
    return int(np.argmin(rec["test"]))


def baseline_record(series: Series, split: Split, config: model.ModelConfig) -> dict:
    """The version's baselines (`model.backtest.BASELINES`, seasonal naive at the shortest season found) as its
    backtest scores them: per baseline its MAE on the validation cut-offs in training-std units and its test
    forecast from the training data; {"validation": False} where the split has no validation cut-off."""
    sequence = model.Sequence(split.train_t, split.train_x, series.channels)
    setup = choice_setup([sequence], config)
    if not setup.cutoffs:
        return {"validation": False}
    season = min(setup.sizes.seasons) if setup.sizes.seasons else None
    out: dict = {"validation": True, "mae": {}, "forecast": {}}
    for name in backtest.BASELINES:
        if name == "seasonal_naive" and season is None:
            continue
        errors = [np.abs(backtest.baseline(name, sequence, c.end, split.train_t[c.future], season)
                         - split.train_x[c.future]) / setup.norm.std for c in setup.cutoffs]
        out["mae"][name] = backtest._mae(np.concatenate(errors))
        out["forecast"][name] = backtest.baseline(name, sequence, split.train_t.size - 1, split.test_t, season)
    return out


def baseline_where_it_wins(rec: dict) -> int | str:
    """The baseline with the lowest validation MAE where that is below the model's choice's (what a service
    answering with the baseline wherever the version lost to it on its backtest would give), else that choice."""
    chosen = plain(rec)
    base = rec["baselines"]
    if not base["validation"]:
        return chosen
    name = min(base["mae"], key=base["mae"].__getitem__)
    mine = backtest._mae(np.concatenate(rec["errors"][chosen][0]))  # the first set: the validation cut-offs
    return name if base["mae"][name] < mine else chosen


def gp_where_best(rec: dict, margin: float = 1.0) -> int:
    """The GP (index len(candidates)) where its score is below `margin` times every candidate's, else the model's
    own choice."""
    s = scores(rec | {"errors": rec["errors"] + [rec["gp"]["errors"]]})
    return len(rec["candidates"]) if s[-1] < margin * np.nanmin(s[:-1]) else plain(rec)


# How a vote reads a candidate, coarse to fine: each key is one dimension of `backtest.candidates_of`.
VOTE_KEYS: tuple[Callable[[Component, float], object], ...] = (
    lambda c, h: round(c.damping / h, 3) if c.trend else 0.0,
    lambda c, h: c.seasons,
    lambda c, h: (round(c.persistence / h, 3), c.echo),
    lambda c, h: c.context,
    lambda c, h: round(c.half_life / c.context, 4),
    lambda c, h: c.robust,
    lambda c, h: c.harmonics)


def vote(share: float) -> Callable[[dict], int]:
    def rule(rec: dict) -> int:
        s, chosen, h = scores(rec), lowest_bounded(rec), rec["horizon"]
        cands = rec["candidates"]
        near = np.isfinite(s) & (s <= share * s[chosen])
        if not backtest.undamped_trends([cands[chosen]], h)[0]:  # a line only where the model's rule allows one
            near &= ~backtest.undamped_trends(cands, h)
        kept = list(np.flatnonzero(near))
        for key in VOTE_KEYS:
            value = {i: key(cands[i], h) for i in kept}
            votes = Counter(value.values())
            # the most common value; among equally common ones, that of the lowest-scoring candidate
            top = max(votes.values())
            winner = value[min((i for i in kept if votes[value[i]] == top), key=lambda i: s[i])]
            kept = [i for i in kept if value[i] == winner]
        return int(min(kept, key=lambda i: s[i]))
    rule.__doc__ = (f"A vote among the candidates scoring within {share}x the lowest bounded score: dimension by "
                    "dimension (VOTE_KEYS), the value most of them share, then the lowest score among those left.")
    return rule


RULES: dict[str, Callable[[dict], Choice]] = {"plain": own, "one choice for every channel": plain,
                                              "hindsight": hindsight,
                                                 "no test against the last value": lowest_bounded,
                                                 "no undamped trend": no_undamped_trend,
                                                 "the lowest score, an undamped trend too": lowest,
                                                 "the baseline where it backtests better": baseline_where_it_wins,
                                                 "a vote within 1.05x": vote(1.05)}
GP_RULES: dict[str, Callable[[dict], int]] = {"GP alone": lambda rec: len(rec["candidates"]),
                                               "GP where it backtests best": gp_where_best,
                                               "GP where it backtests below 0.8x the best candidate":
                                                   lambda rec: gp_where_best(rec, 0.8)}


# what a rule returns: see test_mae
Choice = int | str | tuple[str, int] | np.ndarray | list[int | tuple[str, int]] | PerChannel


def log_where_better(rec: dict) -> int | tuple[str, int]:
    """The choice among the log scale's candidates (`("log", index)`) where its score is below the plain choice's,
    else the plain choice (a tie keeps the plain one)."""
    mine, logged = plain(rec), plain(rec["log"])
    return ("log", logged) if scores(rec["log"])[logged] < scores(rec)[mine] else mine


LOG_RULES: dict[str, Callable[[dict], Choice]] = {
    "the log scale always": lambda rec: ("log", plain(rec["log"])),
    "the log scale where it backtests better": log_where_better,
    "the mean of both scales' choices": lambda rec: [plain(rec), ("log", plain(rec["log"]))]}


def best_k(k: int) -> Callable[[dict], np.ndarray]:
    def weights(rec: dict) -> np.ndarray:
        s = scores(rec)
        w = np.zeros(s.size)
        w[np.argsort(np.where(np.isfinite(s), s, np.inf), kind="stable")[:k]] = 1.0 / k
        return w
    weights.__doc__ = f"The mean of the {k} candidates with the lowest scores."
    return weights


def within(share: float) -> Callable[[dict], np.ndarray]:
    def weights(rec: dict) -> np.ndarray:
        s = scores(rec)
        near = np.isfinite(s) & (s <= share * np.nanmin(s))
        return near / near.sum()
    weights.__doc__ = f"The mean of the candidates scoring within {share}x the lowest score."
    return weights


COMBINATIONS: dict[str, Callable[[dict], np.ndarray]] = {
    "mean of the best 3": best_k(3), "mean of the best 5": best_k(5), "mean of the best 20": best_k(20),
    "mean within 1.02x the best score": within(1.02)}


def test_mae(rec: dict, choice: Choice) -> float:
    """The test MAE of a rule's candidate (an index; len(candidates): the GP; ("log", index): one of the log scale's
    candidates), a combination's weights, a baseline (its name) or the mean of a list of candidates' forecasts."""
    if isinstance(choice, PerChannel):
        forecast = np.stack([rec["forecasts"][i][:, c] for c, i in enumerate(choice.indices)], axis=1)
        return protocol.channel_errors(forecast, rec["truth"], rec["scale"])[0]
    if isinstance(choice, tuple):
        return float(rec[choice[0]]["test"][choice[1]])
    if isinstance(choice, list):
        forecast = np.mean([rec[c[0]]["forecasts"][c[1]] if isinstance(c, tuple) else rec["forecasts"][c]
                            for c in choice], axis=0)
    elif isinstance(choice, np.ndarray):
        forecast = np.tensordot(choice, rec["forecasts"], axes=1)
    elif isinstance(choice, str):
        forecast = rec["baselines"]["forecast"][choice]
    elif choice == len(rec["candidates"]):
        forecast = rec["gp"]["forecast"]
    else:
        return float(rec["test"][choice])
    return protocol.channel_errors(forecast, rec["truth"], rec["scale"])[0]


RECORD = 7  # what a record holds (2: every candidate's test forecast; 3: the candidates with finer Fourier pairs;
#            4: undamped trends; 5: `chosen` with the test against the last value; 6: each cut-off's first scored
#            index, and far_cutoffs' set where there is one; 7: `parts`, the choice's part per channel)


def cached_record(series: Series, split: Split, seed: int, config: model.ModelConfig, gp: bool = False,
                  log: bool = False) -> dict:
    """record(series, split, config with the split's horizon), from the cache where it is (`split`: seed's), with
    its baseline_record under "baselines", with `gp` its gp_record under "gp" (each cached beside it) and with `log`
    the record of the config with the log scale under "log" (cached as that config's own record)."""
    folder, key = CACHE / series.dataset / series.name, _key(config)
    timed = config.replace(horizon=split.horizon)
    rec = _cached(folder / f"seed{seed}-{key}.pkl", lambda: record(series, split, timed))
    rec["baselines"] = _cached(folder / f"seed{seed}-{key}-baselines.pkl",
                               lambda: baseline_record(series, split, timed))
    if gp:
        rec["gp"] = _cached(folder / f"seed{seed}-{key}-gp.pkl", lambda: gp_record(series, split, timed))
    if log:
        rec["log"] = _cached(folder / f"seed{seed}-{_key(config.replace(log_scale=True))}.pkl",
                             lambda: record(series, split, timed.replace(log_scale=True)))
    return rec


def _key(config: model.ModelConfig) -> str:
    return hashlib.sha256(json.dumps(config.to_dict() | {"protocol": protocol.PROTOCOL, "record": RECORD},
                                     sort_keys=True, default=str).encode()).hexdigest()[:12]


def _cached(path: Path, make: Callable[[], dict]) -> dict:
    if path.exists():
        return pickle.loads(path.read_bytes())
    rec = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(rec))
    return rec


def check(rec: dict) -> None:
    """Stop where the record's own score would not take the model's choice (the replication has drifted)."""
    s = scores(rec)
    best = plain(rec)
    if not s[best] == s[rec["chosen"]]:
        raise SystemExit(f"{rec['series']}: the record's score picks candidate {best} ({s[best]}), "
                         f"choose_component {rec['chosen']} ({s[rec['chosen']]})")
    choice = own(rec)
    if rec["parts"] != (list(choice.indices) if isinstance(choice, PerChannel) else []):
        raise SystemExit(f"{rec['series']}: the record's channels choose {choice}, choose_component {rec['parts']}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--held-out", action="store_true", help="realdata_bench's held-out data sets")
    ap.add_argument("--only", type=lambda s: s.split(","), help="data sets, comma-separated (default all)")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    ap.add_argument("--config", type=json.loads, default={}, help="JSON object of ModelConfig fields")
    ap.add_argument("--gp", action="store_true", help="add a Gaussian process as one more candidate (gp_record)")
    ap.add_argument("--log", action="store_true", help="add the log scale's candidates (LOG_RULES)")
    ap.add_argument("--out", type=Path, help="also write the table to this file, with the command above it")
    args = ap.parse_args(argv)
    loaders = HELD_OUT if args.held_out else LOADERS
    unknown = sorted(set(args.only or ()) - set(loaders))
    if unknown:
        ap.error(f"unknown data set(s) {unknown}; known: {', '.join(loaders)}")
    config = model.ModelConfig.from_dict({"frame": "local", **args.config})
    rules: dict[str, Callable[[dict], Choice]] = {**RULES, **COMBINATIONS, **(GP_RULES if args.gp else {}),
                                                  **(LOG_RULES if args.log else {})}
    lines = ["| data set | rule | rMAE | ÷ best baseline | median MAE over series | median series ÷ best baseline |",
             "|---|---|---|---|---|---|"]
    print("\n".join(lines))
    medians: dict[str, list[float]] = {r: [] for r in rules}  # per rule, each data set's median series ratio
    for name in args.only or list(loaders):
        mae: dict[str, dict[str, list[float]]] = {r: {} for r in rules}
        last: dict[str, list[float]] = {}
        best: dict[str, list[float]] = {}
        for series in loaders[name]():
            for seed in args.seeds:
                split = protocol.thin(series, seed)
                rec = cached_record(series, split, seed, config, args.gp, args.log)
                check(rec)
                if args.log:
                    check(rec["log"])
                baselines = baseline_part(series, split, seed)
                best.setdefault(series.name, []).append(min(s["mae"] for s in baselines.values() if "mae" in s))
                last.setdefault(series.name, []).append(baselines["last value"]["mae"])
                for rule_name, rule in rules.items():
                    mae[rule_name].setdefault(series.name, []).append(test_mae(rec, rule(rec)))
        for rule_name in rules:
            mine = mae[rule_name]
            with np.errstate(divide="ignore", invalid="ignore"):  # a baseline exact on the test span: inf
                rmae = np.mean([np.divide(m, d) for s in mine for m, d in zip(mine[s], last[s], strict=True)])
                ratio = np.mean([np.divide(m, d) for s in mine for m, d in zip(mine[s], best[s], strict=True)])
                median_ratio = np.median([np.mean(np.divide(v, best[s])) for s, v in mine.items()])
            median = np.median([np.mean(v) for v in mine.values()])
            medians[rule_name].append(float(median_ratio))
            lines.append(f"| {name} | {rule_name} | {rmae:.3f} | {ratio:.3f} | {median:.4g} | {median_ratio:.3f} |")
            print(lines[-1])
    for rule_name, ratios in medians.items():
        lines.append(f"| median data set | {rule_name} | | | | {np.median(ratios):.3f} |")
        print(lines[-1])
    if args.out:
        command = " ".join(["python benchmarks/component_bench.py", *(argv if argv is not None else sys.argv[1:])])
        args.out.write_text(f"# Ways of choosing the classical component\n\n`{command}`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""From per-seed scores to the table and the targets.

A record is one (data set, series, seed): {"dataset", "series", "seed", "methods": {method: scores}} with scores as
in evaluate.py. Each method's row averages its per-seed ratios over the seeds where it ran (rMAE = MAE ÷ last value's
MAE, MAE ÷ the lowest baseline MAE of that seed, interpolation MSE ÷ linear interpolation's, spread) and pools its
band coverage over all seeds' test points.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from benchmarks.realdata.data import PANEL
from benchmarks.realdata.evaluate import MODEL_METHODS

__all__ = ["ORDER", "rows", "targets", "panel_summary", "standings", "band_summary", "markdown"]

ORDER = ("model", "classical", "panel", "last value", "drift", "seasonal naive", "GP", "ETS", "ARIMA",
         "linear interpolation")
MSFT_RMAE = 1.05  # a random walk: the last value is the best forecast there is, so "about as good" is the target


def _per_seed(methods: dict[str, dict]) -> dict[str, dict]:
    """One seed's ratios per method that ran."""
    ran = {m: s for m, s in methods.items() if "failed" not in s}
    last = ran.get("last value", {}).get("mae", math.nan)
    best = min((s["mae"] for m, s in ran.items() if m not in MODEL_METHODS and "mae" in s), default=math.nan)
    linear = ran.get("linear interpolation", {}).get("interp_mse", math.nan)
    out = {}
    for m, s in ran.items():
        row = {"mae": s.get("mae", math.nan), "rmae": s.get("mae", math.nan) / last,
               "vs_best": s.get("mae", math.nan) / best, "interp_mse": s.get("interp_mse", math.nan),
               "interp_ratio": s.get("interp_mse", math.nan) / linear, "spread": s.get("spread", math.nan),
               "seconds": s.get("seconds", math.nan), "interval": s.get("interval", math.nan)}
        out[m] = row | {"inside": s.get("inside", 0), "total": s.get("total", 0)}
    return out


def rows(records: list[dict]) -> list[dict]:
    """One row per (data set, series, method), averaged over seeds; in records' order, methods in ORDER."""
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        grouped[r["dataset"], r["series"]].append(r)
    out = []
    for (dataset, series), group in grouped.items():
        per_seed = [_per_seed(r["methods"]) for r in group]
        names = {m for r in group for m in r["methods"]}
        for method in sorted(names, key=lambda m: ORDER.index(m) if m in ORDER else len(ORDER)):
            ran = [s[method] for s in per_seed if method in s]
            failures = sorted({r["methods"][method]["failed"] for r in group
                               if "failed" in r["methods"].get(method, {})})
            row = {"dataset": dataset, "series": series, "method": method, "seeds": len(ran),
                   "of": sum(method in r["methods"] for r in group), "failed": failures}
            for key in ("mae", "rmae", "vs_best", "interp_mse", "interp_ratio", "spread", "seconds", "interval"):
                row[key] = _mean([s[key] for s in ran])
            row["seconds_max"] = max((s["seconds"] for s in ran), default=math.nan)
            row["inside"], row["total"] = sum(s["inside"] for s in ran), sum(s["total"] for s in ran)
            row["coverage"] = row["inside"] / row["total"] if row["total"] else math.nan
            out.append(row)
    return out


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _model(table: list[dict], method: str = "model") -> list[dict]:
    return [r for r in table if r["method"] == method]


def panel_summary(table: list[dict]) -> dict[str, float] | None:
    """Median over countries of each method's MAE (mean over seeds) on the panel data set; "model" and "panel (same
    countries)" on the countries that have per-country models. None without the panel data set."""
    countries = [r for r in table if r["dataset"] == PANEL]
    if not countries:
        return None
    out = {}
    for method in ORDER:
        values = [r["mae"] for r in countries if r["method"] == method and not math.isnan(r["mae"])]
        if values:
            out[method] = float(np.median(values))
    with_model = {r["series"] for r in _model(countries)}
    same = [r["mae"] for r in _model(countries, "panel") if r["series"] in with_model]
    if same:
        out["panel (same countries)"] = float(np.median(same))
    out["countries with a per-country model"] = len(with_model)
    return out


def _median_dataset(rows_: list[dict]) -> float:
    """The median over data sets of each one's ratio to the best baseline, PANEL's countries counting as one (NaN
    where a row has none: a method that failed on a whole data set)."""
    by_dataset: dict[str, list[float]] = defaultdict(list)
    for r in rows_:
        by_dataset[r["dataset"]].append(r["vs_best"])
    return float(np.median([np.median(v) for v in by_dataset.values()])) if by_dataset else math.nan


def standings(table: list[dict]) -> list[dict]:
    """Every forecasting method judged by the error targets the model is held to: per method, the median data
    set's ratio to the best baseline, and over its series how many are above 1.5x that baseline and how many have
    an rMAE of 1 or more (the last value as good or better). The best baseline is chosen per seed after the
    fact, so no single method need reach a ratio of 1 anywhere."""
    out = []
    for method in ORDER:
        mine = [r for r in table if r["method"] == method and not math.isnan(r["vs_best"])]
        if not mine:
            continue
        out.append({"method": method, "median": _median_dataset(mine), "series": len(mine),
                    "above_1_5": sum(r["vs_best"] > 1.5 for r in mine),
                    "rmae_1": sum(r["rmae"] >= 1 for r in mine),
                    "datasets": len({r["dataset"] for r in mine})})
    return out


def band_summary(table: list[dict]) -> list[dict]:
    """Per method with a 90% band: over its series, the median coverage and how many fall below 80%, inside 80-95%
    and above 95%; the coverage pooled over every test point of PANEL's countries (NaN without them); and against
    the GP's band on the same series, the median ratio of the interval scores (mean over seeds each) and on how many
    series it is lower (NaN and 0 without a GP row). A series' test points lie in one span per seed, so its coverage
    moves in large steps (a span the band misses as a whole); the pooled figure says whether the bands hold what
    they promise across many series, and the interval score whether they are narrow where they hold."""
    gp = {(r["dataset"], r["series"]): r["interval"] for r in table if r["method"] == "GP"}
    out = []
    for method in ORDER:
        mine = [r for r in table if r["method"] == method and not math.isnan(r["coverage"])]
        if not mine:
            continue
        panel = [r for r in mine if r["dataset"] == PANEL]
        total = sum(r["total"] for r in panel)
        out.append({"method": method, "series": len(mine),
                    "median": float(np.median([r["coverage"] for r in mine])),
                    "below": sum(r["coverage"] < 0.80 for r in mine),
                    "inside": sum(0.80 <= r["coverage"] <= 0.95 for r in mine),
                    "above": sum(r["coverage"] > 0.95 for r in mine),
                    "panel_pooled": sum(r["inside"] for r in panel) / total if total else math.nan,
                    **_against_gp(mine, gp)})
    return out


def _against_gp(mine: list[dict], gp: dict[tuple[str, str], float]) -> dict[str, float]:
    """vs_gp: the median over `mine`'s series of its interval score ÷ the GP's on the same series; better_than_gp:
    on how many it is lower; compared: on how many both were scored."""
    ratios = [r["interval"] / gp[r["dataset"], r["series"]] for r in mine
              if not math.isnan(r["interval"]) and not math.isnan(gp.get((r["dataset"], r["series"]), math.nan))]
    return {"vs_gp": float(np.median(ratios)) if ratios else math.nan,
            "better_than_gp": sum(v < 1 for v in ratios), "compared": len(ratios)}


def targets(table: list[dict]) -> list[tuple[str, bool | None, str]]:
    """(target, met (None: no model rows to judge), the figures behind it), in the issue's order."""
    model_rows = _model(table)
    if not model_rows:
        return [(name, None, "no model rows (--no-model, or nothing run yet)") for name in TARGETS]
    return [(name, *check(table, model_rows)) for name, check in TARGETS.items()]


def _worst(rows_: list[dict], key: str, high: bool = True) -> str:
    finite = [r for r in rows_ if not math.isnan(r[key])]
    if not finite:
        return "none measured"
    r = (max if high else min)(finite, key=lambda r: r[key])
    return f"{'highest' if high else 'lowest'} {r[key]:.3f} ({r['dataset']}/{r['series']})"


def _all(rows_: list[dict], key: str, ok) -> bool:
    return bool(rows_) and all(not math.isnan(r[key]) and ok(r) for r in rows_)


def _rmae(table, rows_):
    ok = lambda r: r["rmae"] <= MSFT_RMAE if r["dataset"] == "msft" else r["rmae"] < 1  # noqa: E731
    return _all(rows_, "rmae", ok), _worst(rows_, "rmae")


def _vs_best(table, rows_):
    median = _median_dataset(rows_)
    every = _all(rows_, "vs_best", lambda r: r["vs_best"] <= 1.5)
    return median <= 1 and every, f"median over data sets {median:.3f}; {_worst(rows_, 'vs_best')}"


TIE = 1e-9  # an MSE ratio within float rounding of 1 is a tie (the same interpolation, summed in another order)


def _interp(table, rows_):
    return _all(rows_, "interp_ratio", lambda r: r["interp_ratio"] <= 1 + TIE), _worst(rows_, "interp_ratio")


def _coverage(table, rows_):
    ok = _all(rows_, "coverage", lambda r: 0.80 <= r["coverage"] <= 0.95)
    return ok, f"{_worst(rows_, 'coverage', high=False)}, {_worst(rows_, 'coverage')} (fractions)"


def _spread(table, rows_):
    chosen = [r for r in rows_ if r["dataset"] in ("taylor", "elnino")]
    if {r["dataset"] for r in chosen} != {"taylor", "elnino"}:
        return None, "needs taylor and elnino"
    return _all(chosen, "spread", lambda r: r["spread"] >= 0.5), _worst(chosen, "spread", high=False)


def _fit(table, rows_):
    fits = [*rows_, *_model(table, "panel")]
    return _all(fits, "seconds_max", lambda r: r["seconds_max"] <= 300), _worst(fits, "seconds_max")


def _panel(table, rows_):
    summary = panel_summary(table)
    if not summary or "panel (same countries)" not in summary or "model" not in summary:
        return None, "needs the panel model and per-country models (--only fertility)"
    one, each = summary["panel (same countries)"], summary["model"]
    return one < each, (f"median-country MAE: one model {one:.4g}, per-country {each:.4g} "
                        f"({summary['countries with a per-country model']} countries)")


TARGETS = {
    f"rMAE < 1 on every series (msft <= {MSFT_RMAE})": _rmae,
    "MAE <= best baseline's on the median series, <= 1.5x on every series": _vs_best,
    "interpolation MSE <= linear interpolation's on every series": _interp,
    "90% band covers 80-95% on every series": _coverage,
    "forecast spread >= 0.5x the truth's on taylor and elnino": _spread,
    "every fit <= 300 s": _fit,
    "panel: one model beats per-country models on the median country": _panel,
}


def _num(value: float, fmt: str) -> str:
    return "" if value is None or math.isnan(value) else format(value, fmt)


def markdown(table: list[dict], checks: list[tuple[str, bool | None, str]], header: list[str]) -> str:
    """The whole results page: header lines, the table, the panel summary, the targets (none where `checks` is
    empty)."""
    lines = [*header, "", "| data set | series | method | rMAE | MAE ÷ best baseline | MAE | 90% coverage "
             "| 90% interval score | interp MSE | interp ÷ linear | spread | fit s | seeds |", "|" + "---|" * 13]
    for r in table:
        seeds = f"{r['seeds']}/{r['of']}" + (f" (failed: {'; '.join(r['failed'])[:80]})" if r["failed"] else "")
        lines.append(
            f"| {r['dataset']} | {r['series']} | {r['method']} | {_num(r['rmae'], '.3f')} | "
            f"{_num(r['vs_best'], '.3f')} | {_num(r['mae'], '.4g')} | {_num(100 * r['coverage'], '.1f')} | "
            f"{_num(r['interval'], '.4g')} | "
            f"{_num(r['interp_mse'], '.4g')} | {_num(r['interp_ratio'], '.3f')} | {_num(r['spread'], '.2f')} | "
            f"{_num(r['seconds'], '.2f')} | {seeds} |")
    summary = panel_summary(table)
    if summary:
        lines += ["", f"Panel ({PANEL}): median-country MAE", "", "| method | median MAE |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in summary.items()]
    ranks = standings(table)
    if ranks:
        lines += ["", "Every method judged by the model's error targets (series: data sets' series, each of "
                  f"{PANEL}'s countries one; the median data set counts {PANEL}'s countries as one, their median):",
                  "", "| method | data sets | median data set: MAE ÷ best baseline | series above 1.5x | "
                  "series with rMAE >= 1 |", "|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['datasets']} | {r['median']:.3f} | {r['above_1_5']} of {r['series']} | "
                  f"{r['rmae_1']} of {r['series']} |" for r in ranks]
    bands = band_summary(table)
    if bands:
        lines += ["", f"90% bands (coverage per series pooled over its seeds; {PANEL}: pooled over all its countries' "
                  "test points; interval score: the band's width plus 20 times the distance by which a value "
                  "falls outside it, lower is better):", "", f"| method | series | median coverage | below 80% | "
                  f"80-95% | above 95% | {PANEL} pooled | interval score ÷ GP's (median) | lower than GP's |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['series']} | {100 * r['median']:.1f} | {r['below']} | {r['inside']} | "
                  f"{r['above']} | {_num(100 * r['panel_pooled'], '.1f')} | {_num(r['vs_gp'], '.3f')} | "
                  f"{r['better_than_gp']} of {r['compared']} |" for r in bands]
    if checks:
        lines += ["", f"Targets (each judged on the mean over seeds; the median series is the median over data sets, "
                  f"{PANEL}'s countries counting as one: their median):", ""]
    for name, met, detail in checks:
        verdict = "not evaluated" if met is None else ("met" if met else "NOT met")
        lines.append(f"- {name}: **{verdict}** ({detail})")
    return "\n".join(lines) + "\n"

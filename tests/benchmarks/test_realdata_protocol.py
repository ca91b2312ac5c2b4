"""The real-data benchmark's protocol, scores and baselines on small synthetic series (no data set is loaded).

Only the ETS/ARIMA cases need statsmodels (the `bench` extra); they skip without it.
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.realdata import baselines, protocol, report
from benchmarks.realdata.evaluate import baseline_scores
from benchmarks.realdata.protocol import Series, Split, thin

ROOT = Path(__file__).resolve().parents[2]
MONTH_STARTS = np.arange("2000-01", "2010-01", dtype="datetime64[M]").astype("datetime64[s]").astype(np.float64)


def series(values, times=None, season=None, channels=None) -> Series:
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    times = 10.0 * np.arange(len(values)) if times is None else np.asarray(times, dtype=np.float64)
    channels = channels or tuple(f"c{i}" for i in range(values.shape[1]))
    return Series("synthetic", "s", times, values, channels, season)


def split_on(t, x, test_t, test_x=None) -> Split:
    """A hand-made split: training points (t, x (n,)), test times; one channel."""
    x = np.asarray(x, dtype=np.float64)[:, None]
    test_x = np.zeros((len(test_t), 1)) if test_x is None else np.asarray(test_x, dtype=np.float64)[:, None]
    return Split(np.asarray(t, dtype=np.float64), x, np.empty(0), np.empty((0, 1)), np.asarray(test_t, float), test_x,
                 float(t[-1]), float(test_t[-1] - t[-1]), np.ones(1))


# --- thinning and splitting ---

def test_thin_keeps_60_percent_and_splits_at_80_percent_of_the_range():
    s = series(np.arange(1000.0))
    split = thin(s, seed=0)
    everything = np.concatenate([split.train_t, split.held_t, split.test_t])
    assert everything.size == 600 == np.unique(everything).size  # kept once each, nowhere twice
    assert np.isin(everything, s.times).all()
    assert split.cut == pytest.approx(0.8 * 9990.0)
    assert split.train_t.max() <= split.cut < split.test_t.min()
    assert split.held_t.max() <= split.cut
    trained = split.train_t.size + split.held_t.size
    assert split.held_t.size == round(0.2 * trained)
    assert split.horizon == split.test_t[-1] - split.train_t[-1]
    np.testing.assert_array_equal(split.train_x[:, 0], split.train_t / 10.0)  # values stay with their times
    np.testing.assert_array_equal(split.scale, [1.0])


def test_the_horizon_reaches_the_last_test_time_in_float64():
    last, until = -1910885061.6945763, 122920571.8251117
    assert last + (until - last) < until  # the plain difference falls short here
    span = protocol.reach(last, until)
    assert last + span >= until and span - (until - last) < 1e-6


def test_held_out_points_keep_the_training_range_and_newest_point():
    for seed in range(20):
        split = thin(series(np.arange(40.0)), seed)
        before_cut = np.concatenate([split.train_t, split.held_t])
        assert split.train_t[0] == before_cut.min() and split.train_t[-1] == before_cut.max()


def test_thin_is_reproducible_per_seed_and_differs_between_seeds():
    s = series(np.arange(500.0))
    a, b, c = thin(s, 1), thin(s, 1), thin(s, 2)
    np.testing.assert_array_equal(a.train_t, b.train_t)
    np.testing.assert_array_equal(a.held_t, b.held_t)
    assert not np.array_equal(a.train_t, c.train_t)


def test_thin_never_keeps_a_time_the_source_lacks():
    values = np.arange(100.0)
    values[::3] = np.nan
    s = series(values)
    split = thin(s, 0)
    kept = np.concatenate([split.train_t, split.held_t, split.test_t])
    assert kept.size == round(0.6 * np.isfinite(values).sum())
    assert np.isfinite(np.concatenate([split.train_x, split.held_x, split.test_x])).all()


def test_several_channels_drop_a_fifth_of_values_and_empty_times():
    rng = np.random.default_rng(5)
    s = series(rng.normal(size=(5000, 3)) * [1.0, 10.0, 100.0])
    split = thin(s, 0)
    x = np.concatenate([split.train_x, split.held_x, split.test_x])
    assert not np.all(np.isnan(x), axis=1).any()
    # of 3000 kept times, 0.2**3 lost every value; the rest keep 80% of their values
    rows = x.shape[0]
    assert 3000 * (1 - 0.2**3) - 40 < rows < 3000 * (1 - 0.2**3) + 40
    missing = np.isnan(x).sum() + 3 * (3000 - rows)
    assert missing / 9000 == pytest.approx(0.2, abs=0.015)
    np.testing.assert_allclose(split.scale, np.nanstd(split.train_x, axis=0))
    np.testing.assert_allclose(split.scale, [1.0, 10.0, 100.0], rtol=0.1)


# --- scores ---

def test_channel_errors_are_in_each_channels_units_and_skip_missing_truth():
    truth = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0]])
    pred = np.array([[2.0, 30.0], [2.0, 999.0], [1.0, 30.0]])
    mae, mse = protocol.channel_errors(pred, truth, np.array([1.0, 10.0]))
    # channel 0: errors 1, 0, 2; channel 1 (in tens): 2, 0
    assert mae == pytest.approx((1.0 + 1.0) / 2)
    assert mse == pytest.approx((5 / 3 + 2.0) / 2)
    assert all(math.isnan(v) for v in protocol.channel_errors(pred[:0], truth[:0], np.ones(2)))


def test_band_counts_and_spread_ratio():
    truth = np.array([[0.0], [1.0], [np.nan], [3.0]])
    lower, upper = truth - 0.5, truth + 0.5
    upper[3] = 2.0
    assert protocol.band_counts(np.nan_to_num(lower), np.nan_to_num(upper), truth) == (2, 3)
    assert protocol.spread_ratio(np.zeros((4, 1)), truth) == 0.0
    assert protocol.spread_ratio(np.nan_to_num(truth) * 0.5, truth) == pytest.approx(0.5)


def test_interval_score_adds_twenty_times_each_miss_to_the_width_in_each_channels_units():
    truth = np.array([[0.0, 10.0], [5.0, np.nan], [-3.0, 50.0]])
    lower = np.array([[-1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]])
    upper = np.array([[1.0, 20.0], [4.0, 0.0], [1.0, 20.0]])
    # channel 0: widths 2, 4, 2; misses 0, 1 above, 2 below -> (2 + (4 + 20) + (2 + 40)) / 3
    # channel 1 (in tens): widths 2, 2; misses 0, 3 above -> (2 + (2 + 60)) / 2
    score = protocol.interval_score(lower, upper, truth, np.array([1.0, 10.0]))
    assert score == pytest.approx(((2 + 24 + 42) / 3 + (2 + 62) / 2) / 2)
    assert protocol.interval_score(lower, upper, truth, np.ones(2), alpha=0.5) == pytest.approx(
        ((2 + 8 + 10) / 3 + (20 + (20 + 4 * 30)) / 2) / 2)  # 2/alpha = 4; channel 1 in its own units
    assert math.isnan(protocol.interval_score(lower[:0], upper[:0], truth[:0], np.ones(2)))


def test_linear_interpolation_per_channel_over_its_own_points():
    t = np.array([0.0, 1.0, 2.0, 4.0])
    x = np.array([[0.0, 0.0], [1.0, np.nan], [2.0, 20.0], [4.0, 40.0]])
    np.testing.assert_allclose(protocol.linear_interpolation(t, x, np.array([0.5, 3.0])), [[0.5, 5.0], [3.0, 30.0]])


def test_nearby_and_newest_fall_back_to_the_nearest_points():
    t = np.array([0.0, 10.0, 11.0, 12.0, 50.0])
    np.testing.assert_array_equal(protocol.nearby(t, 11.0, 1.5), [1, 2, 3])
    np.testing.assert_array_equal(protocol.nearby(t, 40.0, 1.0), [3, 4])
    np.testing.assert_array_equal(protocol.newest(t, 40.0), [1, 2, 3, 4])  # 10.0 is 40 s before 50.0
    np.testing.assert_array_equal(protocol.newest(t, 39.5), [1, 2, 3, 4])  # the last one before the start too
    np.testing.assert_array_equal(protocol.newest(t, 38.5), [2, 3, 4])
    np.testing.assert_array_equal(protocol.newest(t, 5.0), [3, 4])
    np.testing.assert_array_equal(protocol.newest(t, 100.0), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(protocol.newest(t[:1], 5.0), [0])


# --- baselines ---

def test_last_value_and_drift():
    t = np.arange(10.0) * 7
    at = np.array([80.0, 100.0])
    assert baselines.last_value(t, np.sin(t), at, None)[0].tolist() == [np.sin(63.0)] * 2
    y = np.where(t < 30, 100.0, 2.0 + 0.5 * t)  # only the newest 5 points lie on the line
    np.testing.assert_allclose(baselines.drift(t, y, at, None)[0], 2.0 + 0.5 * at)


def test_seasonal_naive_goes_back_whole_seasons_of_grid_steps():
    s = series(np.arange(120.0), times=MONTH_STARTS, season=12)  # value = month index
    t, y = s.times[:50], s.values[:50, 0]
    at = s.times[[50, 61, 62, 80]]
    # the smallest k that lands at or before month 49: 50-12, 61-12, 62-24, 80-36
    np.testing.assert_array_equal(baselines.seasonal_naive(t, y, at, s)[0], [38.0, 49.0, 38.0, 44.0])


def test_seasonal_naive_interpolates_irregular_points_and_refuses_a_short_history():
    s = series(np.arange(120.0), times=MONTH_STARTS, season=12)
    keep = np.array([0, 3, 7, 20, 30, 41, 45, 49])
    at = s.times[[55]]
    np.testing.assert_allclose(baselines.seasonal_naive(s.times[keep], keep.astype(float), at, s)[0], [43.0],
                               rtol=1e-2)  # month 43, between points at months 41 and 45 (months differ in length)
    with pytest.raises(ValueError, match="shorter than a season"):
        baselines.seasonal_naive(s.times[40:50], np.arange(40.0, 50.0), s.times[[62]], s)


def test_a_failing_baseline_is_a_result_not_a_crash():
    s = series(np.sin(np.arange(60.0)), season=48)
    scores = baseline_scores(s, split_on(s.times[:30], s.values[:30, 0], s.times[40:50], s.values[40:50, 0]))
    assert scores["seasonal naive"]["failed"].startswith("ValueError: the training range")
    assert scores["last value"]["mae"] >= 0


def test_gp_learns_a_season_and_gives_a_band():
    s = series(np.sin(2 * np.pi * np.arange(96) / 12), times=MONTH_STARTS[:96], season=12)
    t, y = s.times[:72], s.values[:72, 0]
    mean, std = baselines.gp(t, y, s.times[72:], s)
    np.testing.assert_allclose(mean, s.values[72:, 0], atol=0.1)
    assert np.all(std > 0)


def test_ets_and_arima_forecast_a_seasonal_series_on_its_grid():
    pytest.importorskip("statsmodels", reason="ETS and ARIMA need statsmodels: pip install -e '.[bench]'")
    months = np.arange(120)
    s = series(10 + 0.05 * months + np.sin(2 * np.pi * months / 12), times=MONTH_STARTS, season=12)
    keep = np.sort(np.random.default_rng(0).choice(96, 70, replace=False))
    t, y = s.times[keep], s.values[keep, 0]
    ets_mean, _ = baselines.ets(t, y, s.times[96:], s)
    arima_mean, _ = baselines.arima(t, y, s.times[96:], s)
    truth = s.values[96:, 0]
    naive = np.abs(y[-1] - truth).mean()
    assert np.abs(ets_mean - truth).mean() < naive / 3
    assert np.abs(arima_mean - truth).mean() < naive


def test_the_protocol_does_not_need_the_bench_extra():
    code = ("import sys; import benchmarks.realdata.protocol, benchmarks.realdata.baselines, "
            "benchmarks.realdata.report; "
            "assert not {'statsmodels', 'pmdarima', 'sktime'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_held_out_runs_its_own_data_sets_and_no_other():
    bench = pytest.importorskip("benchmarks.realdata_bench")
    from benchmarks.realdata.data import HELD_OUT, LOADERS

    assert not set(HELD_OUT) & set(LOADERS)
    assert bench.parse_args([]).only == list(LOADERS)
    assert bench.parse_args(["--held-out"]).only == list(HELD_OUT)
    assert bench.parse_args(["--held-out", "--only", "co2,lynx"]).only == ["co2", "lynx"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--held-out", "--only", "nile"])  # a target's data set
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "co2"])  # held out: only with --held-out


def test_each_held_out_loader_gives_one_series_on_its_grid():
    pytest.importorskip("statsmodels", reason="the held-out data ship in the bench extra")
    pytest.importorskip("pmdarima", reason="the held-out data ship in the bench extra")
    from benchmarks.realdata.data import HELD_OUT

    for name, load in HELD_OUT.items():
        (s,) = load()
        assert (s.dataset, s.name, s.values.shape[1]) == (name, name, 1)
        assert np.all(np.diff(s.times) > 0) and np.isfinite(s.values[[0, -1], 0]).all(), name
        assert np.isfinite(s.values).mean() > 0.95, name


# --- seeds to rows, rows to targets ---

def record(seed: int, model_mae: float, inside: int) -> dict:
    return {"dataset": "nile", "series": "nile", "seed": seed, "methods": {
        "last value": {"mae": 2.0, "mse": 4.0, "spread": 0.0, "seconds": 0.0},
        "drift": {"mae": 1.0, "mse": 1.0, "spread": 0.5, "seconds": 0.0},
        "ETS": {"failed": "ValueError: boom"} if seed == 1 else {"mae": 4.0, "mse": 16.0, "spread": 1.0,
                                                                  "seconds": 0.1},
        "linear interpolation": {"interp_mse": 2.0},
        "model": {"mae": model_mae, "mse": 1.0, "spread": 0.8, "seconds": 10.0 * (seed + 1), "interp_mse": 1.0,
                  "inside": inside, "total": 10},
    }}


def test_rows_average_ratios_over_seeds_and_pool_coverage():
    table = {r["method"]: r for r in report.rows([record(0, 0.5, 9), record(1, 1.5, 8)])}
    assert table["model"]["rmae"] == pytest.approx((0.25 + 0.75) / 2)
    assert table["model"]["vs_best"] == pytest.approx((0.5 + 1.5) / 2)  # drift is the best baseline
    assert table["model"]["coverage"] == pytest.approx(17 / 20)
    assert table["model"]["interp_ratio"] == 0.5
    assert table["model"]["seconds_max"] == 20.0
    assert (table["ETS"]["seeds"], table["ETS"]["of"], table["ETS"]["failed"]) == (1, 2, ["ValueError: boom"])
    assert table["ETS"]["rmae"] == 2.0
    assert math.isnan(table["drift"]["coverage"])


def test_targets_report_met_and_not_met():
    checks = {name: met for name, met, _ in report.targets(report.rows([record(0, 0.5, 9), record(1, 1.5, 8)]))}
    assert checks["rMAE < 1 on every series (msft <= 1.05)"] is True
    assert checks["MAE <= best baseline's on the median series, <= 1.5x on every series"] is True
    assert checks["90% band covers 80-95% on every series"] is True
    assert checks["forecast spread >= 0.5x the truth's on taylor and elnino"] is None  # neither was run
    worse = {name: met for name, met, _ in report.targets(report.rows([record(0, 3.0, 5)]))}
    assert worse["rMAE < 1 on every series (msft <= 1.05)"] is False
    assert worse["90% band covers 80-95% on every series"] is False
    assert all(met is None for _, met, _ in report.targets(report.rows([{**record(0, 1, 1), "methods": {
        "last value": {"mae": 1.0, "mse": 1.0, "spread": 0.0, "seconds": 0.0}}}])))


def test_standings_judge_every_method_by_the_models_error_targets():
    table = report.rows([record(0, 0.5, 9), record(1, 1.5, 8),
                         {**record(0, 3.0, 5), "dataset": "pbs", "series": "pbs"}])
    ranks = {r["method"]: r for r in report.standings(table)}
    assert list(ranks) == ["model", "last value", "drift", "ETS"]  # in ORDER; interpolation has no forecast
    # nile: drift is the best baseline on both seeds (the model 0.5x and 1.5x of it); pbs: the model 3x of it
    assert ranks["model"]["median"] == pytest.approx(np.median([1.0, 3.0]))
    assert (ranks["model"]["above_1_5"], ranks["model"]["rmae_1"], ranks["model"]["series"]) == (1, 1, 2)
    assert ranks["drift"]["median"] == 1.0 and ranks["drift"]["above_1_5"] == 0
    assert ranks["last value"]["median"] == 2.0 and ranks["last value"]["rmae_1"] == 2
    assert ranks["ETS"]["median"] == 4.0  # the seed where it failed does not count
    assert "| drift | 2 | 1.000 | 0 of 2 | 0 of 2 |" in report.markdown(table, report.targets(table), [])
    assert "Targets (" in report.markdown(table, report.targets(table), [])
    assert "Targets (" not in report.markdown(table, [], [])  # the held-out data sets judge no target


def test_band_summary_counts_series_by_coverage_and_pools_the_panels_points():
    def country(name: str, inside: int, total: int, dataset: str = "fertility") -> dict:
        return {"dataset": dataset, "series": name, "seed": 0, "methods": {
            "last value": {"mae": 2.0, "mse": 4.0, "spread": 0.0, "seconds": 0.0},
            "model": {"mae": 1.0, "mse": 1.0, "spread": 1.0, "seconds": 1.0, "inside": inside, "total": total}}}
    table = report.rows([country("A", 7, 7), country("B", 0, 7), country("C", 6, 7),
                         country("nile", 19, 20, dataset="nile")])
    (model,) = report.band_summary(table)  # no other method has a band
    assert (model["series"], model["below"], model["inside"], model["above"]) == (4, 1, 2, 1)
    assert model["median"] == pytest.approx(np.median([1.0, 0.0, 6 / 7, 0.95]))
    assert model["panel_pooled"] == pytest.approx(13 / 21)  # nile's points are not the panel's
    assert "| model | 4 | 90.4 | 1 | 2 | 1 | 61.9 |" in report.markdown(table, report.targets(table), [])


def test_band_summary_compares_interval_scores_with_the_gps_on_the_same_series():
    def series(name: str, model: float, gp: float | None) -> dict:
        methods = {"last value": {"mae": 2.0, "mse": 4.0, "spread": 0.0, "seconds": 0.0},
                   "model": {"mae": 1.0, "mse": 1.0, "spread": 1.0, "seconds": 1.0, "inside": 9, "total": 10,
                             "interval": model}}
        if gp is not None:
            methods["GP"] = {"mae": 1.0, "mse": 1.0, "spread": 1.0, "seconds": 1.0, "inside": 9, "total": 10,
                             "interval": gp}
        return {"dataset": name, "series": name, "seed": 0, "methods": methods}
    table = report.rows([series("a", 2.0, 4.0), series("b", 3.0, 2.0), series("c", 1.0, 1.25),
                         series("d", 9.0, None)])
    bands = {r["method"]: r for r in report.band_summary(table)}
    # d has no GP row: compared on a, b and c only (ratios 0.5, 1.5, 0.8)
    assert (bands["model"]["vs_gp"], bands["model"]["better_than_gp"], bands["model"]["compared"]) == (0.8, 2, 3)
    assert (bands["GP"]["vs_gp"], bands["GP"]["better_than_gp"], bands["GP"]["compared"]) == (1.0, 0, 3)
    assert "| model | 4 | 90.0 | 0 | 4 | 0 |  | 0.800 | 2 of 3 |" in report.markdown(table, report.targets(table), [])

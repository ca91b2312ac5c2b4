"""benchmarks/component_bench.py replays the model's choice of a classical component: its record must name the
component the model's own fit takes, and score it as the real-data benchmark scores the model's classical part."""

import dataclasses

import numpy as np
import pytest

import model
from benchmarks import component_bench
from benchmarks.realdata import evaluate, protocol
from benchmarks.realdata.protocol import Series

MONTH_STARTS = np.arange("2000-01", "2012-01", dtype="datetime64[M]").astype("datetime64[s]").astype(np.float64)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(3)
    months = np.arange(MONTH_STARTS.size)
    values = 10 + 0.05 * months + 2 * np.sin(2 * np.pi * months / 12) + rng.normal(0, 0.5, months.size)
    series = Series("synthetic", "s", MONTH_STARTS, values[:, None], ("v",), 12)
    split = protocol.thin(series, 0)
    config = model.ModelConfig(frame="local", horizon=split.horizon, context=4 * split.horizon,
                               train_steps=20)  # the network is not the question; a given context: fewer candidates
    return series, split, config, component_bench.record(series, split, config)


def test_the_record_names_the_component_the_models_fit_takes_and_scores_it_as_the_benchmark_does(case):
    series, split, config, rec = case
    fitted = model.fit([model.Sequence(split.train_t, split.train_x, series.channels)], config)
    taken = dataclasses.replace(fitted.component, blend=(), unit_prior=(), linear_inside=False, nonnegative=())
    assert taken == rec["candidates"][rec["chosen"]]
    classical = evaluate.model_scores(fitted, split, series.channels, 8, 0.0)["classical"]["mae"]
    assert rec["test"][rec["chosen"]] == pytest.approx(classical, rel=1e-9)


def test_the_records_own_score_picks_what_the_model_picks_and_a_drifted_record_stops_the_script(case):
    *_, rec = case
    component_bench.check(rec)
    assert component_bench.plain(rec) == rec["chosen"] or (
        component_bench.scores(rec)[component_bench.plain(rec)] == component_bench.scores(rec)[rec["chosen"]])
    worst = int(np.nanargmax(component_bench.scores(rec)))
    with pytest.raises(SystemExit, match="choose_component"):
        component_bench.check({**rec, "chosen": worst})
    assert rec["test"][component_bench.hindsight(rec)] == rec["test"].min()


def test_the_undamped_trend_rules_take_the_lowest_score_with_it_and_without_it(case):
    *_, rec = case
    undamped = np.array([c.trend and c.damping > rec["horizon"] for c in rec["candidates"]])
    assert undamped.any() and not undamped.all()
    line = int(np.flatnonzero(undamped)[0])
    errors = [[[e * 0.01 for e in cuts] for cuts in mine] if i == line else mine
              for i, mine in enumerate(rec["errors"])]
    clear = rec | {"errors": errors}  # the line wins by far more than the margin: every rule that may take it does
    assert component_bench.plain(clear) == component_bench.lowest(clear) == line
    assert not undamped[component_bench.no_undamped_trend(clear)]
    assert component_bench.no_undamped_trend(clear) == component_bench.no_undamped_trend(rec)


def test_a_combination_of_one_candidate_is_that_candidate_and_the_gp_is_scored_on_the_same_cut_offs(case):
    series, split, config, rec = case
    one = component_bench.best_k(1)(rec)
    assert one.sum() == 1.0 and int(np.argmax(one)) == component_bench.lowest(rec)
    assert component_bench.test_mae(rec, one) == pytest.approx(rec["test"][component_bench.lowest(rec)], rel=1e-12)
    three = component_bench.best_k(3)(rec)
    mean = rec["forecasts"][three > 0].mean(axis=0)
    assert component_bench.test_mae(rec, three) == pytest.approx(
        protocol.channel_errors(mean, split.test_x, split.scale)[0], rel=1e-12)

    gp = component_bench.gp_record(series, split, config)
    assert [[e.shape for e in per_set] for per_set in gp["errors"]] == \
        [[e.shape for e in per_set] for per_set in rec["errors"][0]]
    with_gp = rec | {"gp": gp}
    taken = component_bench.gp_where_best(with_gp)
    assert taken in (len(rec["candidates"]), component_bench.plain(rec))
    gp_mae = protocol.channel_errors(gp["forecast"], split.test_x, split.scale)[0]
    assert component_bench.test_mae(with_gp, len(rec["candidates"])) == gp_mae
    # a seasonal series with a trend: the GP's forecast holds the season, so it is far better than its mean level
    assert gp_mae < protocol.channel_errors(np.full_like(split.test_x, np.nanmean(split.train_x)), split.test_x,
                                            split.scale)[0] / 2


def test_the_baseline_rule_answers_with_the_baseline_only_where_it_beat_the_choice_on_the_validation_cut_offs(case):
    series, split, config, rec = case
    base = component_bench.baseline_record(series, split, config)
    assert base["validation"] and set(base["mae"]) == {"last_value", "drift", "seasonal_naive"}
    chosen = component_bench.plain(rec)
    mine = float(np.mean(np.concatenate(rec["errors"][chosen][0])))  # one channel: the validation set's MAE
    with_base = rec | {"baselines": base}
    if min(base["mae"].values()) < mine:
        assert component_bench.baseline_where_it_wins(with_base) == min(base["mae"], key=base["mae"].get)
    else:
        assert component_bench.baseline_where_it_wins(with_base) == chosen
    # the same record with the drift's validation error made the lowest: the rule answers with the drift
    tiny = with_base | {"baselines": base | {"mae": base["mae"] | {"drift": mine / 2}}}
    assert component_bench.baseline_where_it_wins(tiny) == "drift"
    drift = model.backtest.baseline("drift", model.Sequence(split.train_t, split.train_x, series.channels),
                                    split.train_t.size - 1, split.test_t, None)
    assert component_bench.test_mae(tiny, "drift") == protocol.channel_errors(drift, split.test_x, split.scale)[0]
    assert component_bench.baseline_where_it_wins(
        with_base | {"baselines": base | {"mae": {k: 2 * mine for k in base["mae"]}}}) == chosen


def test_the_log_rule_takes_the_log_scales_choice_only_where_it_backtests_better(case):
    *_, rec = case
    chosen = component_bench.plain(rec)

    def scaled(by: float) -> dict:  # the same candidates with every backtest error times `by`, other test errors
        return rec | {"errors": [[[e * by for e in cut] for cut in per_set] for per_set in rec["errors"]],
                      "test": rec["test"] + 1.0}

    better = rec | {"log": scaled(0.5)}
    assert component_bench.log_where_better(better) == ("log", chosen)
    assert component_bench.test_mae(better, ("log", chosen)) == rec["test"][chosen] + 1.0
    assert component_bench.LOG_RULES["the log scale always"](rec | {"log": scaled(2.0)}) == ("log", chosen)
    assert component_bench.log_where_better(rec | {"log": scaled(2.0)}) == chosen
    assert component_bench.log_where_better(rec | {"log": rec}) == chosen  # a tie keeps the plain scale
    # the mean of both scales' choices: the mean of the two forecasts, scored as the benchmark scores a forecast
    other = int(np.argsort(rec["test"])[len(rec["test"]) // 2])
    mean = component_bench.test_mae(rec | {"log": rec}, [chosen, ("log", other)])
    assert mean == pytest.approx(protocol.channel_errors((rec["forecasts"][chosen] + rec["forecasts"][other]) / 2,
                                                         rec["truth"], rec["scale"])[0], rel=1e-12)
    assert component_bench.LOG_RULES["the mean of both scales' choices"](better) == [chosen, ("log", chosen)]


def test_the_plain_rule_keeps_the_last_value_unless_the_lowest_score_beats_it_clearly_and_a_vote_stays_near(case):
    *_, rec = case
    s, bounded = component_bench.scores(rec), component_bench.lowest_bounded(rec)
    cands, h = rec["candidates"], rec["horizon"]
    assert component_bench.plain(rec) in (bounded, model.backtest.last_value(cands, h, like=cands[bounded]))
    other = next(i for i, c in enumerate(cands) if c.seasons)
    last = model.backtest.last_value(cands, h, like=cands[other])  # the last value standing in for `other`

    def scaled(i: int, by: float) -> dict:  # candidate i's backtest errors times `by`
        return rec | {"errors": [[[e * by for e in cuts] for cuts in mine] if k == i else mine
                                 for k, mine in enumerate(rec["errors"])]}

    clear = scaled(other, 0.01)  # far below every other candidate on every cut-off
    assert component_bench.plain(clear) == component_bench.lowest_bounded(clear) == other
    assert component_bench.vote(1.05)(clear) == other  # no other candidate within 5% of it: nothing to vote on
    # the last value as good as the best on every cut-off but one, where it is a hair worse: no clear win, so the
    # plain rule keeps the last value while the rule without the test takes the lowest score
    tied = scaled(other, 0.01)
    tied["errors"][last] = [[e.copy() for e in cuts] for cuts in tied["errors"][other]]
    tied["errors"][last][0][0] = tied["errors"][last][0][0] * 1.001
    assert component_bench.lowest_bounded(tied) == other and component_bench.plain(tied) == last
    v = component_bench.vote(1.05)(rec)
    assert s[v] <= 1.05 * s[bounded]

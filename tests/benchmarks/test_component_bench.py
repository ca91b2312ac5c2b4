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
    config = model.ModelConfig(frame="local", horizon=split.horizon, train_steps=20)  # the network: not the question
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

"""Forecast bands calibrated on held-out windows: the table itself, and coverage on data the model never saw."""

from __future__ import annotations

import numpy as np
import pytest
from model_fixtures import TINY, sine_sequences
from scipy.stats import norm
from scipy.stats import t as t_dist

from model import ModelConfig, Sequence, fit, forecast, forecast_batch, load, save
from model.calibration import BANDS, LEVELS, MIN_RESIDUALS, Calibration
from model.train import calibrate


def _at(calibration: Calibration, band: int, level: float, channel: int = 0) -> float:
    return float(np.interp(level, LEVELS, calibration.quantiles[band, :, channel]))


def test_table_holds_each_bands_own_residual_quantiles():
    rng = np.random.default_rng(0)
    horizon = 4.0
    offsets = np.concatenate([-rng.uniform(0, 2, 4000), rng.uniform(0, horizon, 4000)])
    residuals = np.where(offsets <= 0, 3.0, 1.0) * rng.standard_normal(8000)  # interpolation 3x wider
    cal = Calibration.from_residuals(offsets, residuals[:, None], horizon)
    assert cal.edges.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert cal.bands(np.array([-1.0, 0.0, 0.5, 1.5, 3.5, 9.0])).tolist() == [0, 0, 1, 2, 4, 4]
    assert abs(_at(cal, 0, 0.95) - 3 * norm.ppf(0.95)) < 0.25
    for band in range(1, BANDS):
        assert abs(_at(cal, band, 0.95) - norm.ppf(0.95)) < 0.15
        assert abs(_at(cal, band, 0.25) - norm.ppf(0.25)) < 0.1
    assert abs(cal.scale[0, 0] - 3.0) < 0.2 and abs(cal.scale[1, 0] - 1.0) < 0.1


def test_sparse_bands_fall_back_to_the_channels_pooled_residuals_then_to_the_normal():
    rng = np.random.default_rng(1)
    offsets = -rng.uniform(0, 1, 500)  # every residual is interpolation; channel 1 has almost none
    residuals = np.stack([2.0 * rng.standard_normal(500), np.full(500, np.nan)], axis=1)
    residuals[: MIN_RESIDUALS - 1, 1] = 5.0
    cal = Calibration.from_residuals(offsets, residuals, 1.0)
    assert cal.counts[:, 0].tolist() == [500, 0, 0, 0, 0]
    for band in range(1, BANDS):  # no extrapolation residuals: the pooled interpolation ones stand in
        np.testing.assert_array_equal(cal.quantiles[band, :, 0], cal.quantiles[0, :, 0])
    # too few anywhere: Student's t with 29 degrees of freedom, as wide as their median size says (5 / 0.674),
    # since that is above the standard normal's
    assert abs(_at(cal, 0, 0.95, channel=1) - t_dist.ppf(0.95, 29) * 5.0 / norm.ppf(0.75)) < 1e-6
    assert Calibration.from_dict(cal.to_dict()).quantiles.tolist() == cal.quantiles.tolist()


def test_too_few_residuals_anywhere_fall_back_to_a_normal_of_the_given_width():
    offsets = np.array([0.5, 1.5, 2.5])
    residuals = np.array([[0.1, 2.0], [-0.1, 0.5], [0.03, np.nan]])  # channel 0: small; channel 1: two, too few
    plain = Calibration.from_residuals(offsets, residuals, 4.0)
    wide = Calibration.from_residuals(offsets, residuals, 4.0, fallback=np.array([100.0, 2.0]))
    np.testing.assert_allclose(wide.quantiles[:, :, 0], 100.0 * plain.quantiles[:, :, 0])
    np.testing.assert_allclose(wide.quantiles[:, :, 1], 2.0 * plain.quantiles[:, :, 1])
    assert wide.scale.tolist() == [[100.0, 2.0]] * BANDS and plain.scale.tolist() == [[1.0, 1.0]] * BANDS


def test_a_few_residuals_larger_than_the_fallback_widen_the_band_to_their_median_size():
    """Fewer than MIN_RESIDUALS residuals in all, but larger than the spread the fallback claims: a t with as many
    degrees of freedom, scaled by their median size (robust to one huge residual); never narrower than the
    fallback."""
    rng = np.random.default_rng(4)
    offsets = rng.uniform(0, 4.0, 12)
    residuals = 3.0 * rng.standard_normal((12, 1))
    residuals[0, 0] = 5_000.0  # a context whose spread came out near zero
    cal = Calibration.from_residuals(offsets, residuals, 4.0, fallback=np.array([1.0]))
    size = float(np.median(np.abs(residuals))) / norm.ppf(0.75)
    assert 1.5 < size < 6.0  # about 3, the one huge residual barely moving it
    for band in range(BANDS):
        assert abs(_at(cal, band, 0.95) - t_dist.ppf(0.95, 12) * size) < 1e-6
        assert abs(_at(cal, band, 0.05) + t_dist.ppf(0.95, 12) * size) < 1e-6
    assert cal.scale[0, 0] == pytest.approx(t_dist.std(12) * size)
    wider = Calibration.from_residuals(offsets, residuals, 4.0, fallback=np.array([50.0]))
    assert abs(_at(wider, 1, 0.95) - 50.0 * norm.ppf(0.95)) < 1e-6  # the fallback, where it is the larger


def test_a_local_fit_with_too_few_residuals_gets_a_band_of_its_own_spread():
    # eight readings of noise (std 1) around a level: the backtest holds fewer residuals than the bands need, so
    # a normal stands in; its width was obs_std (0.01) times the spread the component leaves, a band 0.02 wide
    # that held 1% of later values
    rng = np.random.default_rng(8)
    t = np.sort(rng.uniform(0, 8 * 86_400.0, 8)) + 1.7e9
    series = Sequence(t, 10 + rng.normal(size=(8, 1)), ("v",))
    fitted = fit([series], ModelConfig(horizon=5 * 86_400.0))
    assert fitted.calibration.counts.sum() < MIN_RESIDUALS
    at = t[-1] + np.linspace(3_600.0, 5 * 86_400.0, 50)
    band = forecast(fitted, series, at, seed=0).quantiles
    width = band[-1, :, 0] - band[0, :, 0]
    assert 1.0 < width.mean() < 10.0, width.mean()  # a 90% band of noise of std 1 is 3.3 wide


def test_checked_until_is_the_end_of_the_last_quarter_with_residuals_of_its_own():
    rng = np.random.default_rng(3)
    for leads, until in (((0.5,), 1.0), ((-0.5, 0.5, 1.5), 2.0), ((0.5, 3.9), 4.0), ((-0.5,), 0.0), ((), 0.0)):
        offsets = np.repeat(np.asarray(leads, dtype=np.float64), 40)
        residuals = rng.standard_normal((offsets.size, 2))
        residuals[:, 1] = np.nan  # a channel with none counts for nothing; the other's decide
        assert Calibration.from_residuals(offsets, residuals, 4.0).checked_until(4.0) == until, leads
        assert Calibration.from_residuals(offsets, residuals, 4.0).checked_until(8.0) == 2 * until  # in its units


def test_a_horizon_longer_than_the_history_allows_is_checked_part_of_the_way():
    # 30 days of readings and a horizon of 90: no cut-off has a reading more than about a history ahead of it
    day = 86_400.0
    t = 1.7e9 + np.arange(30) * day
    walk = Sequence(t, 10 + np.cumsum(np.random.default_rng(0).normal(size=(30, 1)), axis=0), ("v",))
    fitted = fit([walk], ModelConfig(horizon=90 * day, train_steps=4))  # where residuals lie is not trained
    assert fitted.backtest["calibrated_until_s"] == fitted.calibration.checked_until(90 * day) == 45 * day
    assert fitted.calibration.counts[3:].sum() == 0 < fitted.calibration.counts[1:3].sum()


def test_a_sparse_band_pools_with_its_nearest_bands_first():
    # errors grow with the horizon; the last quarter holds too few residuals on its own, and pooling it with
    # every band would take the narrow early ones in too
    rng = np.random.default_rng(2)
    offsets = np.concatenate([rng.uniform(0.01, 3.0, 600), rng.uniform(3.01, 4.0, 10)])
    residuals = (1.0 + offsets) * rng.standard_normal(offsets.size)
    cal = Calibration.from_residuals(offsets, residuals[:, None], 4.0)
    assert cal.counts[4, 0] == 10
    band3 = residuals[(offsets > 2.0) & (offsets <= 3.0)]
    pooled = np.abs(np.concatenate([band3, residuals[offsets > 3.0]]))
    assert _at(cal, 4, 0.95) == pytest.approx(np.quantile(np.concatenate([-pooled, pooled]), 0.95))
    assert _at(cal, 4, 0.95) > np.quantile(np.abs(residuals), 0.9)


def test_bands_keep_the_residuals_sizes_but_not_their_signs():
    # every held-out forecast overshot (a falling series the component ran ahead of): the band must still reach
    # above the mean, as far as the errors were large, in case the future turns
    rng = np.random.default_rng(3)
    offsets = rng.uniform(0.01, 4.0, 2000)
    residuals = -np.abs(1.0 + rng.standard_normal(offsets.size))
    cal = Calibration.from_residuals(offsets, residuals[:, None], 4.0)
    for band in range(1, BANDS):
        assert _at(cal, band, 0.95) == pytest.approx(-_at(cal, band, 0.05))
        assert _at(cal, band, 0.95) == pytest.approx(np.quantile(np.abs(residuals), 0.9), rel=0.1)
        assert _at(cal, band, 0.5) == pytest.approx(0.0, abs=1e-9)
    assert cal.scale[1, 0] == pytest.approx(np.sqrt(np.mean(residuals**2)), rel=0.05)


def _held_out(sequences: list[Sequence], horizon: float, rng: np.random.Generator):
    """Requests shaped like the calibration windows: the first half less a fifth of its inner points, scored on
    those and on everything after it within the horizon."""
    requests, truths = [], []
    for s in sequences:
        half = int(np.searchsorted(s.times, s.times[0] + 0.5 * (s.times[-1] - s.times[0]), side="right"))
        hide = np.zeros(s.times.size, dtype=bool)
        hide[rng.choice(np.arange(1, half - 1), max(1, half // 5), replace=False)] = True
        seen = ~hide & (np.arange(s.times.size) < half)
        scored = ~seen & (s.times <= s.times[seen][-1] + horizon)
        requests.append((Sequence(s.times[seen], s.values[seen], s.channels), s.times[scored]))
        truths.append(s.values[scored])
    return requests, truths


@pytest.mark.parametrize("context_keep", [1.0, 0.5])  # training's context dropout must not widen the bands
def test_bands_cover_what_they_claim_on_series_never_seen(tmp_path, context_keep):
    config = TINY.replace(epochs=3, context_keep=context_keep)
    fitted = fit(sine_sequences(48, 30, seed=0), config, validation=sine_sequences(48, 30, seed=1))
    assert fitted.calibration is not None and fitted.calibration.counts.sum() > 1000
    requests, truths = _held_out(sine_sequences(64, 30, seed=2), fitted.horizon, np.random.default_rng(3))
    answers = forecast_batch(fitted, requests, samples=64, quantiles=(0.05, 0.25, 0.75, 0.95), seeds=range(64))
    inside90, inside50 = [], []
    for answer, truth in zip(answers, truths, strict=True):
        q05, q25, q75, q95 = answer.quantiles
        seen = np.isfinite(truth)
        inside90.append(((q05 <= truth) & (truth <= q95))[seen])
        inside50.append(((q25 <= truth) & (truth <= q75))[seen])
    cover90, cover50 = np.concatenate(inside90).mean(), np.concatenate(inside50).mean()
    assert np.concatenate(inside90).size > 1000
    assert 0.83 <= cover90 <= 0.96, cover90
    assert 0.40 <= cover50 <= 0.60, cover50
    # the calibration travels with the artifact
    save(fitted, tmp_path / "m.safetensors")
    before, again = (forecast_batch(m, requests[:4], samples=64, quantiles=(0.05, 0.25, 0.75, 0.95), seeds=range(4))
                     for m in (fitted, load(tmp_path / "m.safetensors")))
    for a, b in zip(before, again, strict=True):
        np.testing.assert_allclose(a.quantiles, b.quantiles, rtol=1e-6, atol=1e-9)


def test_no_held_out_windows_at_all_gives_the_standard_normal(fitted):
    cal = calibrate(fitted, [], np.random.default_rng(0))
    assert cal.counts.sum() == 0
    assert abs(_at(cal, 3, 0.95, channel=1) - norm.ppf(0.95)) < 1e-9

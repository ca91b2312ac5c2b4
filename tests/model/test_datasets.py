"""model.datasets.panel: the many-series set the GPU benchmark trains on."""

from __future__ import annotations

import numpy as np

from model import datasets

HOUR = 3600.0


def test_panel_series_are_irregular_hourly_and_tested_on_their_last_day() -> None:
    task = datasets.panel(n=12, points=120, seed=4)
    assert len(task.train) == len(task.test) == 12
    for series, (context, at, truth) in zip(task.train, task.test, strict=True):
        assert context is series and series.channels == ("x",) and series.values.shape == (series.times.size, 1)
        gaps = np.diff(np.concatenate([series.times, at]))
        assert gaps.min() >= 0.5 * HOUR - 1e-6 and gaps.max() <= 1.5 * HOUR + 1e-6
        assert series.times.size + at.size == 120
        assert at[0] > series.times[-1] and at[-1] - series.times[-1] <= 24 * HOUR + 1.5 * HOUR
        assert truth.shape == (at.size, 1) and np.isfinite(truth).all()


def test_panel_is_reproducible_and_its_series_differ() -> None:
    a, b, c = datasets.panel(n=5, seed=1), datasets.panel(n=5, seed=1), datasets.panel(n=5, seed=2)
    for s, t in zip(a.train, b.train, strict=True):
        np.testing.assert_array_equal(s.times, t.times)
        np.testing.assert_array_equal(s.values, t.values)
    assert not np.array_equal(a.train[0].values[:10], c.train[0].values[:10])
    levels = [s.values.mean() for s in a.train]
    assert np.std(levels) > 0.5  # each series its own level: no one normalisation fits them all

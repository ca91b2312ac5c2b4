import numpy as np
import pytest

from model import Sequence, datasets
from model.baselines import gp_forecast, linear_forecast, locf_forecast


@pytest.fixture
def context():
    return Sequence(np.array([0.0, 1.0, 2.0]), np.array([[0.0, 5.0], [1.0, np.nan], [4.0, 7.0]]), ("a", "b"))


def test_locf_carries_each_channel_forward(context):
    fc = locf_forecast(context, [0.5, 1.5, 3.0])
    np.testing.assert_array_equal(fc.mean, [[0.0, 5.0], [1.0, 5.0], [4.0, 7.0]])
    assert fc.quantiles.shape == (3, 3, 2)


def test_linear_interpolates_each_channel(context):
    fc = linear_forecast(context, [0.5, 1.0, 3.0])
    np.testing.assert_allclose(fc.mean, [[0.5, 5.5], [1.0, 6.0], [4.0, 7.0]])


def test_gp_fits_a_smooth_signal_and_is_ordered():
    t = np.linspace(0, 5, 40)
    ctx = Sequence(t[::2], np.sin(t[::2]), ("a",))
    fc = gp_forecast(ctx, t[1::2])
    assert np.max(np.abs(fc.mean[:, 0] - np.sin(t[1::2]))) < 0.05
    assert np.all(np.diff(fc.quantiles, axis=0) >= 0)


def test_periodic_is_as_defined_and_deterministic():
    task = datasets.periodic("extrap", n=50)
    again = datasets.periodic("extrap", n=50)
    assert len(task.train) == 40 and len(task.test) == 10
    s = task.train[0]
    assert s.times.size == 100 and s.times[0] == 0 and s.times[-1] < 5
    np.testing.assert_array_equal(s.values, again.train[0].values)
    ctx, at, truth = task.test[0]
    assert ctx.times.max() < 2.5 <= at.min() and truth.shape == (at.size, 1)

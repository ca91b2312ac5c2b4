import numpy as np
import pytest

from model import InputError, Sequence


def test_values_shape_must_match_times_and_channels():
    with pytest.raises(InputError, match=r"\(3, 2\), got \(3, 1\)"):
        Sequence(np.arange(3.0), np.zeros((3, 1)), ("a", "b"))


def test_times_must_strictly_increase():
    with pytest.raises(InputError, match=r"times\[1\] = 2.0 >= times\[2\] = 2.0"):
        Sequence(np.array([1.0, 2.0, 2.0]), np.zeros(3), ("a",))


def test_channels_distinct():
    with pytest.raises(InputError, match="distinct"):
        Sequence(np.arange(2.0), np.zeros((2, 2)), ("a", "a"))


def test_infinite_value_rejected_nan_allowed():
    Sequence(np.arange(2.0), np.array([1.0, np.nan]), ("a",))
    with pytest.raises(InputError, match="inf"):
        Sequence(np.arange(2.0), np.array([1.0, np.inf]), ("a",))


def test_select_reorders_and_drops_empty_rows():
    s = Sequence(np.arange(3.0), np.array([[1.0, np.nan], [np.nan, np.nan], [3.0, 4.0]]), ("a", "b"))
    picked = s.select(("b",))
    assert picked.times.tolist() == [2.0]
    assert picked.values.tolist() == [[4.0]]
    with pytest.raises(InputError, match=r"lacks channels \['c'\]"):
        s.select(("c",))

"""encoder_batch, target_batch and row_targets (built for all windows at once) against the plain construction."""

import numpy as np
import pytest
import torch

from model.data import distinct_times, encoder_batch, row_targets, target_batch


def _windows(seed: int, lengths: list[int], channels: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        t = np.sort(rng.uniform(0.0, 5.0, n))
        x = rng.normal(size=(n, channels))
        x[rng.random((n, channels)) < 0.3] = np.nan
        out.append((t, x))
    return out


def _encoder_steps(contexts):
    """One context at a time, as the encoder reads them: newest first, [values or 0, mask, gap to the older point
    (or to the window start, time 0)], zero padding after each context's own length."""
    longest = max(len(t) for t, _ in contexts)
    steps = np.zeros((len(contexts), longest, 2 * contexts[0][1].shape[1] + 1))
    for i, (t, x) in enumerate(contexts):
        for j in range(len(t)):  # step j is point n - 1 - j
            k = len(t) - 1 - j
            observed = ~np.isnan(x[k])
            gap = t[k] - (t[k - 1] if k else 0.0)
            steps[i, j] = np.concatenate([np.where(observed, x[k], 0.0), observed, [gap]])
    return steps


@pytest.mark.parametrize("lengths", [[5, 1, 9, 3], [4, 4, 4], [1]])
def test_encoder_batch_pads_each_context_newest_first(lengths):
    contexts = _windows(0, lengths)
    batch = encoder_batch(contexts, torch.float64, torch.device("cpu"))
    assert batch.lengths.tolist() == lengths
    np.testing.assert_array_equal(batch.steps.numpy(), _encoder_steps(contexts))


def test_target_batch_puts_each_target_on_the_union_grid():
    targets = _windows(1, [6, 2, 7])
    targets.append((targets[0][0][:3].copy(), np.ones((3, 2))))  # times shared with another target
    batch = target_batch(targets, torch.float64, torch.device("cpu"))
    grid = batch.times.numpy()
    assert grid[0] == 0.0 and np.all(np.diff(grid) > 0)
    assert set(grid[1:]) == set(np.concatenate([t for t, _ in targets]))
    for i, (t, x) in enumerate(targets):
        where = np.searchsorted(grid, t)
        np.testing.assert_array_equal(grid[where], t)
        observed = ~np.isnan(x)
        np.testing.assert_array_equal(batch.mask[i].numpy()[where], observed)
        np.testing.assert_array_equal(batch.values[i].numpy()[where], np.where(observed, x, 0.0))
        others = np.setdiff1d(np.arange(grid.size), where)
        assert not batch.mask[i].numpy()[others].any() and not batch.values[i].numpy()[others].any()


def test_target_batch_grid_stays_unique_in_float32():
    # two float64 times that round to the same float32 become one grid point
    t = np.array([1.0, 1.0 + 1e-9, 2.0])
    batch = target_batch([(t, np.array([[1.0], [2.0], [3.0]]))], torch.float32, torch.device("cpu"))
    assert batch.times.tolist() == [0.0, 1.0, 2.0]
    assert batch.mask[0, :, 0].tolist() == [0.0, 1.0, 1.0]


def test_row_targets_put_each_window_on_its_own_row():
    targets = _windows(2, [6, 2, 7])
    rows = row_targets(targets, torch.float64, torch.device("cpu"), 16)
    grid = rows.grid.numpy()
    assert grid.size == 16 and grid[0] == 0.0 and np.all(np.diff(grid) > 0)
    assert grid[-1] == max(t.max() for t, _ in targets)
    assert rows.at.shape == (3, 7) and rows.values.shape == rows.mask.shape == (3, 7, 2)
    for i, (t, x) in enumerate(targets):
        observed = ~np.isnan(x)
        np.testing.assert_array_equal(rows.at[i, :len(t)].numpy(), t)
        np.testing.assert_array_equal(rows.mask[i, :len(t)].numpy(), observed)
        np.testing.assert_array_equal(rows.values[i, :len(t)].numpy(), np.where(observed, x, 0.0))
        assert not rows.mask[i, len(t):].any() and not rows.at[i, len(t):].any()  # padding: time 0, never scored
    with pytest.raises(ValueError, match="at least 2"):
        row_targets(targets, torch.float64, torch.device("cpu"), 1)


def test_distinct_times_counts_what_target_batch_would_solve_at():
    for dtype in (torch.float64, torch.float32):
        targets = _windows(3, [5, 8, 1])
        targets.append((targets[1][0][:4].copy(), np.ones((4, 2))))  # shared times count once
        targets.append((np.array([0.0, 1.0 + 1e-9]), np.ones((2, 2))))  # 0 is always in; float32 merges 1e-9
        assert distinct_times(targets, dtype) == target_batch(targets, dtype, torch.device("cpu")).times.numel()

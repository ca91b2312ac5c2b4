"""encoder_batch and target_batch (built for all contexts at once) against the plain per-context construction."""

import numpy as np
import pytest
import torch

from model.data import encoder_batch, target_batch


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

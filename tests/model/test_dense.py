"""Training on a shared grid (RowTargets, model/solver/dense.py) against the solve at every target's own time."""

import numpy as np
import pytest
import torch

from model import ModelConfig
from model.data import Example, Normaliser, RowTargets, row_targets, target_batch
from model.network import LatentODE
from model.solver import train_solve
from model.solver.dense import hermite
from model.train import batch_loss, evaluate_mse, targets_of

TIGHT = {"rtol": 1e-9, "atol": 1e-10, "max_steps": 100_000}


def _network(config: ModelConfig, gain: float = 1.0) -> LatentODE:
    torch.manual_seed(0)
    net = LatentODE(2, config).double()
    with torch.no_grad():  # a larger gain: dynamics that bend hard within the span (a harder test of the grid)
        for p in net.dynamics.parameters():
            p.mul_(gain)
    return net


def _targets(windows: int, points: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(windows):
        t = np.sort(rng.uniform(0.0, 3.0, points))
        x = rng.normal(size=(points, 2))
        x[rng.random(x.shape) < 0.2] = np.nan
        out.append((t, x))
    return out


def _exact(net: LatentODE, config: ModelConfig, z0: torch.Tensor, targets) -> torch.Tensor:
    """(N, T, D): the solve at the union of every target time, each row's own times picked from it."""
    union = target_batch(targets, torch.float64, torch.device("cpu")).times
    rows = row_targets(targets, torch.float64, torch.device("cpu"), 2)
    on_union = train_solve(net.dynamics, z0, union, config)
    return on_union[torch.searchsorted(union, rows.at), torch.arange(z0.shape[0])[:, None]]


def test_hermite_reads_the_solution_between_grid_points_and_converges_as_the_grid_refines():
    config = ModelConfig(**TIGHT)
    net, targets = _network(config, gain=5.0), _targets(8, 40)
    z0 = torch.randn(8, config.latent_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        exact = _exact(net, config, z0, targets)
        errors = {}
        for points in (32, 64, 128):
            rows = row_targets(targets, torch.float64, torch.device("cpu"), points)
            on_grid = train_solve(net.dynamics, z0, rows.grid, config)
            errors[points] = float((hermite(rows.grid, on_grid, lambda z: net.dynamics(None, z), rows.at)
                                    - exact).abs().max())
    scale = float(exact.abs().max())
    assert errors[64] < 1e-3 * scale  # bending dynamics (|z| up to ~28), read to a thousandth
    assert errors[128] < errors[64] < errors[32]
    assert errors[128] < errors[32] / 30  # two halvings of h: a linear read would gain 16x; this one ~80x


def test_hermite_refuses_times_off_the_grid_and_mismatched_shapes():
    grid = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    z = torch.zeros(5, 3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="outside the grid"):
        hermite(grid, z, lambda v: v, torch.tensor([[0.5], [1.5], [0.1]], dtype=torch.float64))
    with pytest.raises(ValueError, match="shapes do not match"):
        hermite(grid, z, lambda v: v, torch.zeros(2, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 2"):
        hermite(grid[:1], z[:1], lambda v: v, torch.zeros(3, 1, dtype=torch.float64))


@pytest.mark.parametrize("gradient", ["adjoint", "backprop"])
def test_the_loss_on_a_grid_is_the_loss_at_every_target_with_the_same_gradients(gradient):
    config = ModelConfig(gradient=gradient, **TIGHT)
    net, targets = _network(config, gain=2.0), _targets(6, 30, seed=2)
    rng = np.random.default_rng(3)
    examples = [Example(ctx_t=t[:10], ctx_x=np.nan_to_num(x[:10]) + rng.normal(size=(10, 2)), tgt_t=t, tgt_x=x)
                for t, x in targets]

    def loss_and_grads(grid: int | None):
        cfg = ModelConfig(gradient=gradient, target_grid=grid, train_output_times=None, **TIGHT)
        net.zero_grad()
        loss, mse = batch_loss(net, examples, cfg, 0.5, torch.Generator().manual_seed(4))
        loss.backward()
        return float(loss.detach()), float(mse.detach()), [p.grad.clone() for p in net.parameters()]

    at_targets, on_grid = loss_and_grads(None), loss_and_grads(128)
    assert on_grid[0] == pytest.approx(at_targets[0], rel=1e-4)
    assert on_grid[1] == pytest.approx(at_targets[1], rel=1e-4)
    for a, b in zip(at_targets[2], on_grid[2], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-6)


def test_batch_loss_takes_the_grid_only_for_windows_with_their_own_times(monkeypatch):
    seen = []
    original = LatentODE.loss

    def spy(self, enc, tgt, *args):
        seen.append(type(tgt))
        return original(self, enc, tgt, *args)

    monkeypatch.setattr(LatentODE, "loss", spy)
    config = ModelConfig(target_grid=8)
    net = LatentODE(2, config)
    shared = np.linspace(0.1, 2.0, 10)
    # 11 distinct times (more than the grid's 8, but one shared grid: solved as they are); then 51 (their own)
    for times in ([shared] * 5, [shared + 0.01 * k for k in range(5)]):
        examples = [Example(ctx_t=t[:3], ctx_x=np.zeros((3, 2)), tgt_t=t, tgt_x=np.ones((10, 2))) for t in times]
        batch_loss(net, examples, config, 1.0, torch.Generator().manual_seed(0))
    batch_loss(net, examples, ModelConfig(target_grid=None), 1.0, torch.Generator().manual_seed(0))
    assert [kind.__name__ for kind in seen] == ["TargetBatch", "RowTargets", "TargetBatch"]


def test_validation_on_a_grid_scores_what_the_solve_at_every_target_scores():
    config = ModelConfig(**TIGHT)
    net, targets = _network(config, gain=2.0), _targets(12, 25, seed=5)
    examples = [Example(ctx_t=t[:8], ctx_x=np.nan_to_num(x[:8]), tgt_t=t, tgt_x=x) for t, x in targets]
    norm = Normaliser(mean=np.zeros(2), std=np.array([1.0, 3.0]), time_scale=1.0)
    on_grid = evaluate_mse(net, examples, norm, ModelConfig(target_grid=64, **TIGHT))
    at_targets = evaluate_mse(net, examples, norm, ModelConfig(target_grid=None, **TIGHT))
    assert isinstance(targets_of(examples, ModelConfig(target_grid=64), torch.float64, torch.device("cpu")),
                      RowTargets)
    assert on_grid == pytest.approx(at_targets, rel=1e-5)
    assert on_grid != at_targets  # a different path did run

"""model/solver/backprop.py: dopri5 with a hand-written backward equals autograd through model/solver/rk.py's dopri5."""

import pytest
import torch

from model.network import Dynamics
from model.solver.backprop import backprop_odeint
from model.solver.folded import FoldedMLP
from model.solver.rk import dopri5


def _dynamics(seed: int, dim: int = 3, layers: int = 2) -> Dynamics:
    torch.manual_seed(seed)
    dynamics = Dynamics(dim, 16, layers).double()
    for p in dynamics.parameters():  # larger than the initialisation so that the solve takes many steps
        p.data.normal_(0, 0.6)
    return dynamics


def _gradients(solve, dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor, weights: torch.Tensor):
    z0 = z0.clone().requires_grad_()
    dynamics.zero_grad()
    zt = solve(z0)
    (zt * weights).sum().backward()
    return zt.detach(), [z0.grad, *(torch.zeros_like(p) if p.grad is None else p.grad.clone()
                                    for p in dynamics.parameters())]


@pytest.mark.parametrize(("layers", "times"), [
    (2, [0.0, 0.3, 0.31, 1.7, 2.0, 4.5]),  # several outputs per step, and steps with none
    (1, [0.0, 5.0]),
    (0, [0.0, 0.5, 1.0]),  # a linear f
    (2, [0.0]),  # one output: z0 itself
])
def test_values_and_gradients_equal_autograd_through_the_solver(layers, times):
    dynamics = _dynamics(0, layers=layers)
    torch.manual_seed(1)
    z0 = torch.randn(5, 3, dtype=torch.float64)
    t = torch.tensor(times, dtype=torch.float64)
    weights = torch.randn(len(times), 5, 3, dtype=torch.float64)
    settings = {"rtol": 1e-6, "atol": 1e-8, "max_steps": 1000}

    def autograd(z):
        return torch.stack(dopri5(lambda y: dynamics(None, y), z, times, **settings)[0])

    def by_hand(z):
        return backprop_odeint(dynamics, z, t, hint="", **settings)

    before = dynamics.nfe
    expected, expected_grads = _gradients(autograd, dynamics, z0, t, weights)
    steps = dynamics.nfe - before
    got, got_grads = _gradients(by_hand, dynamics, z0, t, weights)
    assert dynamics.nfe - before - steps == steps  # the same evaluations, so the same steps
    assert len(times) == 1 or steps > 30
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for g, e in zip(got_grads, expected_grads, strict=True):
        assert (g - e).norm() <= 1e-9 * e.norm() + 1e-14, (g - e).norm() / e.norm()


def test_float32_gradients_equal_autograd_through_the_same_arithmetic():
    """In float32 the folded tanh rounds differently from torch.tanh, and a last-bit difference can flip a step's
    acceptance; through FoldedMLP's own arithmetic the solves are the same, and so must the gradients be."""
    dynamics = _dynamics(2).float()
    torch.manual_seed(3)
    z0, t = torch.randn(8, 3), torch.tensor([0.0, 0.4, 1.1, 2.0])
    weights = torch.randn(4, 8, 3)
    settings = {"rtol": 1e-3, "atol": 1e-4, "max_steps": 1000}

    def reference(z):
        mlp = FoldedMLP([m for m in dynamics.net if isinstance(m, torch.nn.Linear)])  # with autograd
        return torch.stack(dopri5(lambda y: mlp(y)[0], z, t.tolist(), **settings)[0])

    expected, expected_grads = _gradients(reference, dynamics, z0, t, weights)
    got, got_grads = _gradients(lambda z: backprop_odeint(dynamics, z, t, hint="", **settings),
                                dynamics, z0, t, weights)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    for g, e in zip(got_grads, expected_grads, strict=True):
        assert (g - e).norm() <= 1e-5 * e.norm(), (g - e).norm() / e.norm()

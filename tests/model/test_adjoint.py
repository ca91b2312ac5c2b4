"""model/solver/adjoint.py: the seminorm backward, which sums g = ∫ a·∂f/∂θ outside the solver, equals integrating g in
the solver's state with the same error norm."""

import torch

from model.network import Dynamics
from model.solver.adjoint import _full_backward, _seminorm_backward, adjoint_odeint
from model.solver.folded import FoldedMLP


def test_seminorm_quadrature_equals_the_augmented_state_solve():
    torch.manual_seed(0)
    dynamics = Dynamics(3, 16, 2).double()
    for p in dynamics.parameters():  # larger than the initialisation: many steps, several per segment
        p.data.normal_(0, 0.6)
    z0 = torch.randn(5, 3, dtype=torch.float64)
    times = torch.tensor([0.0, 0.2, 0.25, 1.3, 3.0], dtype=torch.float64)
    layers = [m for m in dynamics.net if isinstance(m, torch.nn.Linear)]
    settings = (dynamics, layers, 1e-6, 1e-8, 1000, 1e-6, 1e-8, True, "")
    with torch.no_grad():
        zt = adjoint_odeint(dynamics, z0, times, rtol=1e-6, atol=1e-8, max_steps=1000, adjoint_rtol=1e-6,
                            adjoint_atol=1e-8, seminorm=True, hint="")
        grad_zt = torch.randn_like(zt)
        before = dynamics.nfe
        full = _full_backward(settings, FoldedMLP(layers), times, zt, grad_zt, seminorm=True)
        steps = dynamics.nfe - before
        summed = _seminorm_backward(settings, FoldedMLP(layers), times, zt, grad_zt)
    assert dynamics.nfe - before - steps == steps > 40  # the same steps
    for ours, theirs in zip(summed, full, strict=True):
        assert (ours - theirs).norm() <= 1e-10 * theirs.norm(), (ours - theirs).norm() / theirs.norm()

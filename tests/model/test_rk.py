"""model/solver/rk.py's dopri5 takes torchdiffeq's steps: same values, same number of function evaluations."""

import pytest
import torch
from torchdiffeq import odeint
from torchdiffeq._impl.interp import _interp_evaluate, _interp_fit

from model.network import Dynamics
from model.solver.rk import _BETA, _MID, RKFailure, dopri5, interpolation_weights


def _dynamics(scale: float) -> Dynamics:
    torch.manual_seed(0)
    dynamics = Dynamics(4, 32, 2).double()
    with torch.no_grad():
        for p in dynamics.parameters():
            p.mul_(scale)  # larger weights: livelier dynamics, more steps and some rejected ones
    return dynamics


@pytest.mark.parametrize("scale", [1.0, 4.0, 8.0])
def test_values_and_evaluations_equal_torchdiffeq(scale):
    dynamics = _dynamics(scale)
    gen = torch.Generator().manual_seed(1)
    z0 = torch.randn(20, 4, dtype=torch.float64, generator=gen)
    times = torch.cat([torch.zeros(1, dtype=torch.float64),
                       torch.sort(torch.rand(12, dtype=torch.float64, generator=gen) * 5).values])
    dynamics.nfe = 0
    expected = odeint(dynamics, z0, times, rtol=1e-4, atol=1e-6, method="dopri5")
    expected_nfe, dynamics.nfe = dynamics.nfe, 0
    out, next_step = dopri5(lambda z: dynamics(None, z), z0, times.tolist(), rtol=1e-4, atol=1e-6, max_steps=1000)
    assert dynamics.nfe == expected_nfe
    assert expected_nfe >= {1.0: 20, 4.0: 60, 8.0: 150}[scale], expected_nfe
    torch.testing.assert_close(torch.stack(out), expected, rtol=1e-9, atol=1e-9)
    assert next_step > 0


def test_backprop_through_the_stages_matches_the_solution_s_sensitivity():
    """d z(T) / d z0 by autograd through the steps against finite differences of the solve (tight tolerances)."""
    dynamics = _dynamics(2.0)
    z0 = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    f = lambda z: dynamics(None, z)  # noqa: E731
    end = dopri5(f, z0, [0.0, 2.0], rtol=1e-10, atol=1e-10, max_steps=10000)[0][-1]
    (grad,) = torch.autograd.grad(end.sum(), z0)
    h = 1e-5
    bump = torch.zeros_like(z0)
    bump[1, 2] = h
    with torch.no_grad():
        up = dopri5(f, z0 + bump, [0.0, 2.0], rtol=1e-10, atol=1e-10, max_steps=10000)[0][-1].sum()
        down = dopri5(f, z0 - bump, [0.0, 2.0], rtol=1e-10, atol=1e-10, max_steps=10000)[0][-1].sum()
    assert float(grad[1, 2]) == pytest.approx(float(up - down) / (2 * h), rel=1e-5)


def test_too_many_steps_and_blow_up_raise():
    dynamics = _dynamics(8.0)
    z0 = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with pytest.raises(RKFailure, match="max_num_steps"):
        dopri5(lambda z: dynamics(None, z), z0, [0.0, 5.0], rtol=1e-8, atol=1e-8, max_steps=10)
    with pytest.raises(RKFailure):  # dz/dt = z^2 reaches infinity at t = 1 from z0 = 1
        dopri5(lambda z: z * z, torch.ones(2, dtype=torch.float64), [0.0, 2.0], rtol=1e-6, atol=1e-6,
               max_steps=100000)


def test_interpolation_weights_give_torchdiffeq_s_dense_output():
    torch.manual_seed(0)
    y0, k = torch.randn(4, dtype=torch.float64), [torch.randn(4, dtype=torch.float64) for _ in range(7)]
    dt = 0.37
    y1 = y0 + dt * sum(b * kj for b, kj in zip(_BETA[-1], k, strict=False))
    mid = y0 + dt * sum(m * kj for m, kj in zip(_MID, k, strict=True))
    coefficients = _interp_fit(y0, y1, mid, k[0], k[-1], dt)
    one = torch.tensor(1.0, dtype=torch.float64)
    for x in (0.0, 0.25, 0.5, 0.9, 1.0):
        expected = _interp_evaluate(coefficients, 0 * one, one, x * one)
        got = y0 + dt * sum(w * kj for w, kj in zip(interpolation_weights(x), k, strict=True))
        torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-13)

"""model/solver/folded.py: the folded-tanh MLP and its hand-written derivatives equal autograd through nn.Sequential."""

import pytest
import torch
from torch import nn

from model.network import Dynamics
from model.solver.folded import FoldedMLP


@pytest.mark.parametrize("layers", [0, 1, 2, 3])
def test_values_vjp_and_parameter_sums_equal_autograd(layers):
    torch.manual_seed(layers)
    dynamics = Dynamics(5, 16, layers).double()
    for p in dynamics.parameters():
        p.data.normal_(0, 0.5)
    linear = [m for m in dynamics.net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        mlp = FoldedMLP(linear)
    weight_sums, output_sums = mlp.sums(7, torch.zeros(1, dtype=torch.float64))
    expected_params = [torch.zeros_like(p) for p in dynamics.parameters()]
    for scale in (1.0, -0.3):  # two evaluations summed with weights, as the solvers do
        z = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
        a = torch.randn(7, 5, dtype=torch.float64)
        expected = dynamics(0, z)
        grads = torch.autograd.grad(expected, [z, *dynamics.parameters()], a)
        with torch.no_grad():
            f, inputs = mlp(z)
            vjp, outputs = mlp.backward(inputs, a)
            mlp.accumulate(inputs, outputs, weight_sums, output_sums, scale=scale)
        torch.testing.assert_close(f, expected.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(vjp, grads[0], rtol=1e-12, atol=1e-12)
        for total, g in zip(expected_params, grads[1:], strict=True):
            total += scale * g
    for ours, theirs in zip(mlp.param_grads(weight_sums, output_sums), expected_params, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-11, atol=1e-12)

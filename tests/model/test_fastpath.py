"""model/solver/fastpath.py: the default network takes the hand-written numerics; any other network takes autograd
through its own modules and gets the right gradients; the hand-written code refuses a network it does not compute."""

import pytest
import torch
from torch import nn
from torchdiffeq import odeint

from model import ModelConfig
from model.data import EncoderBatch
from model.network import Dynamics, LatentODE, ODERNNEncoder
from model.solver.backprop import backprop_odeint
from model.solver.fastpath import NotFastPath, is_fast_odernn, is_tanh_mlp, odernn_ode, tanh_mlp
from model.solver.odernn import odernn

D, UNITS = 3, 8


def _dynamics(*modules: nn.Module) -> Dynamics:
    torch.manual_seed(0)
    dynamics = Dynamics(D, UNITS, 1).double()
    if modules:
        dynamics.net = nn.Sequential(*modules).double()
    return dynamics


def _solve_grads(dynamics: Dynamics, solve) -> tuple[torch.Tensor, list[torch.Tensor]]:
    z0 = torch.randn(4, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    times = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    zt = solve(dynamics, z0, times)
    weights = torch.randn(zt.shape, dtype=zt.dtype, generator=torch.Generator().manual_seed(2))
    params = [z0, *dynamics.parameters()]
    return zt.detach(), list(torch.autograd.grad((zt * weights).sum(), params))


def _autograd(dynamics, z0, times):
    return odeint(dynamics, z0, times, rtol=1e-9, atol=1e-9, method="dopri5")


def _train_solve(gradient: str):
    from model.solver.solve import train_solve

    config = ModelConfig(frame="global", gradient=gradient, rtol=1e-9, atol=1e-9, adjoint_rtol=1e-9,
                         adjoint_atol=1e-9)
    return lambda dynamics, z0, times: train_solve(dynamics, z0, times, config)


def test_the_default_network_takes_the_fast_path():
    network = LatentODE(2, ModelConfig())
    assert is_tanh_mlp(network.dynamics.net)
    assert len(tanh_mlp(network.dynamics.net)) == ModelConfig().dynamics_layers + 1
    first, last = odernn_ode(network.encoder)  # the default encoder is the ODE-RNN
    assert first.in_features == last.out_features == network.encoder.hidden


@pytest.mark.parametrize("gradient", ["backprop", "adjoint"])
@pytest.mark.parametrize("activation", ["torch tanh", "relu", "two hidden layers"])
def test_other_dynamics_get_the_gradients_autograd_gives(gradient: str, activation: str):
    modules = {
        "torch tanh": (nn.Linear(D, UNITS), nn.Tanh(), nn.Linear(UNITS, D)),
        "relu": (nn.Linear(D, UNITS), nn.ReLU(), nn.Linear(UNITS, D)),
        "two hidden layers": (nn.Linear(D, UNITS), nn.Tanh(), nn.Linear(UNITS, 5), nn.Tanh(), nn.Linear(5, D)),
    }[activation]
    dynamics = _dynamics(*modules)
    assert is_tanh_mlp(dynamics.net) == (activation != "relu")  # torch's own nn.Tanh is the same function
    expected, expected_grads = _solve_grads(dynamics, _autograd)
    got, grads = _solve_grads(dynamics, _train_solve(gradient))
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)


def test_the_hand_written_solve_refuses_a_network_it_does_not_compute():
    for net in (nn.Sequential(nn.Linear(D, UNITS), nn.ReLU(), nn.Linear(UNITS, D)),
                nn.Sequential(nn.Linear(D, UNITS), nn.Tanh()),
                nn.Sequential(nn.Linear(D, UNITS), nn.Tanh(), nn.Linear(UNITS + 1, D)),
                nn.Sequential(nn.Linear(D, UNITS, bias=False), nn.Tanh(), nn.Linear(UNITS, D))):
        dynamics = _dynamics(*net)
        with pytest.raises(NotFastPath):
            backprop_odeint(dynamics, torch.zeros(1, D, dtype=torch.float64),
                            torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-6, atol=1e-6, max_steps=100,
                            hint="")


def _loop(encoder: ODERNNEncoder, batch: EncoderBatch) -> torch.Tensor:
    """The ODE-RNN written out with the encoder's own modules, in the plainest way."""
    h = batch.steps.new_zeros(batch.steps.shape[0], encoder.hidden)
    for j in range(batch.steps.shape[1]):
        x = batch.steps[:, j]
        moved = encoder.cell(x, h)
        moved = moved - x[:, -1:] * encoder.ode(moved)
        h = torch.where((j < batch.lengths)[:, None], moved, h)
    return h


@pytest.mark.parametrize("units", [6, 4])  # units == hidden silently read the wrong layers once; != raised deep
def test_an_odernn_whose_ode_has_two_hidden_layers_computes_its_own_function(units: int):
    torch.manual_seed(0)
    encoder = ODERNNEncoder(5, 6, units).double()
    assert is_fast_odernn(encoder)
    encoder.ode = nn.Sequential(nn.Linear(6, units), nn.Tanh(), nn.Linear(units, units), nn.Tanh(),
                                nn.Linear(units, 6)).double()
    assert not is_fast_odernn(encoder)
    with pytest.raises(NotFastPath):
        odernn_ode(encoder)
    gen = torch.Generator().manual_seed(1)
    steps = torch.randn(3, 7, 5, dtype=torch.float64, generator=gen)
    steps[..., -1] = torch.rand(3, 7, dtype=torch.float64, generator=gen)
    batch = EncoderBatch(steps, torch.tensor([7, 4, 2]))
    out, expected = odernn(encoder, batch), _loop(encoder, batch)
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(out.sum(), list(encoder.parameters()))
    expected_grads = torch.autograd.grad(expected.sum(), list(encoder.parameters()))
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e)

"""mlp's Tanh: the fast form only inside `inference_tanh()` without autograd, and the same function there; the
network's starting point."""

import itertools

import torch

from model import ModelConfig
from model.network import LatentODE, Tanh, inference_tanh
from model.train import lr_factor


def test_tanh_is_torch_tanh_outside_inference_and_close_inside() -> None:
    x = torch.linspace(-12, 12, 20001)
    layer = Tanh()
    with torch.no_grad():
        assert torch.equal(layer(x), torch.tanh(x))  # training's no-grad steps (solver set-up) are untouched
        with inference_tanh():
            fast = layer(x)
    assert not torch.equal(fast, torch.tanh(x))  # the other form did run ...
    assert (fast - torch.tanh(x)).abs().max() <= 2.5e-7  # ... and is tanh to float32 rounding
    with inference_tanh():
        y = layer(x.clone().requires_grad_())  # autograd on: the plain kernel and its gradient
    assert torch.equal(y.detach(), torch.tanh(x))


def test_network_starts_with_turning_dynamics_and_a_wide_posterior() -> None:
    torch.manual_seed(0)
    config = ModelConfig(latent_dim=6, hidden_dim=8, units=32)
    net = LatentODE(2, config)
    zero = torch.zeros(1, 6)
    assert torch.equal(net.dynamics(0, zero), zero)  # no drift at the origin: biases start at 0
    weights = torch.cat([m.weight.detach().reshape(-1) for m in net.dynamics.net if isinstance(m, torch.nn.Linear)])
    assert 0.09 < float(weights.std()) < 0.11  # N(0, 0.1^2), the reference's initialisation
    jacobian = torch.autograd.functional.jacobian(lambda z: net.dynamics(0, z), zero).reshape(6, 6)
    assert torch.linalg.eigvals(jacobian).imag.abs().max() > 1e-3  # the linearisation turns
    assert torch.equal(net.head[-1].bias[6:], torch.zeros(6))
    with torch.no_grad():
        std = torch.nn.functional.softplus(net.head(torch.zeros(1, 8)).chunk(2, dim=-1)[1])
    assert 0.4 < float(std.mean()) < 1.2  # q(z0) starts wide, near softplus(0) = log 2 (it was 0.05)


def test_learning_rate_schedules() -> None:
    cosine = ModelConfig(lr_schedule="cosine")
    factors = [lr_factor(step, 100, cosine) for step in range(101)]
    assert factors[0] == 1.0 and abs(factors[50] - 0.505) < 1e-12 and abs(factors[100] - 0.01) < 1e-12
    assert all(a > b for a, b in itertools.pairwise(factors))  # falls all the way, and stays at the floor after
    assert lr_factor(500, 100, cosine) == factors[100]
    exponential = ModelConfig(lr_schedule="exponential", lr_decay=0.9)
    assert lr_factor(2, 100, exponential) == 0.9**2
    assert lr_factor(1000, 100, exponential) == 0.1  # the reference's floor
    decay = ModelConfig(lr_decay=0.999)  # the default: the exponential, never above the cosine, floor a hundredth
    assert ModelConfig().lr_schedule == "decay"
    assert lr_factor(10, 1000, decay) == 0.999**10  # early the exponential is the lower
    assert lr_factor(990, 1000, decay) == lr_factor(990, 1000, cosine) > 0.01  # at the end the cosine
    assert lr_factor(1000, 1000, decay) == 0.01

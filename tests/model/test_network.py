"""mlp's Tanh: the fast form only inside `inference_tanh()` without autograd, and the same function there."""

import torch

from model.network import Tanh, inference_tanh


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

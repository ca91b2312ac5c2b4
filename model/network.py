"""The latent ODE network (Chen et al. 2018 §5; Rubanova et al. 2019): encoder, dynamics, decoder and loss.

Shapes: B windows, L encoder steps, U target times, C channels, D = latent_dim, H = hidden_dim, k = IWAE samples.
All times here are model time (float tensors); the network never sees seconds.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import math
from collections.abc import Callable, Iterator
from typing import cast

import torch
from torch import nn

from model.config import ModelConfig
from model.data import EncoderBatch, RowTargets, TargetBatch
from model.solver.dense import hermite
from model.solver.folded import sigmoid_tanh
from model.solver.odernn import odernn

__all__ = ["LatentODE", "Dynamics", "mlp", "Tanh", "inference_tanh", "sigmoid_tanh"]


_INFERENCE_TANH: contextvars.ContextVar[bool] = contextvars.ContextVar("latentcast_inference_tanh", default=False)


@contextlib.contextmanager
def inference_tanh() -> Iterator[None]:
    """Within this block (and without autograd), mlp's Tanh layers compute tanh as 2·sigmoid(2x) − 1."""
    token = _INFERENCE_TANH.set(True)
    try:
        yield
    finally:
        _INFERENCE_TANH.reset(token)


class Tanh(nn.Tanh):
    """tanh; inside `inference_tanh()` without autograd computed as 2·sigmoid(2x) − 1, the same function to float32
    rounding (≤ 2e-7 apart).

    torch 2.13's CPU tanh kernel is several times slower than this form on a forecast batch's hidden layer
    (docs/benchmarks.md, design choices).
    Forecasts use it; training solves use the same form folded into the weights (model/solver/folded.py), and the
    encoder too (model/solver/odernn.py). No parameters: state dicts are those of nn.Tanh.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _INFERENCE_TANH.get() and not torch.is_grad_enabled():
            return sigmoid_tanh(x)
        return torch.tanh(x)


def mlp(inputs: int, units: int, layers: int, outputs: int) -> nn.Sequential:
    """`layers` Tanh hidden layers of `units`, then a linear output; layers = 0 is one Linear."""
    sizes = [inputs] + [units] * layers
    modules: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        modules += [nn.Linear(a, b), Tanh()]
    modules.append(nn.Linear(sizes[-1], outputs))
    return nn.Sequential(*modules)


def _output(net: nn.Sequential) -> nn.Linear:
    """The output layer of an `mlp`: its last module, always an nn.Linear."""
    layer = net[-1]
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"{net!r} does not end with a Linear layer")
    return layer


class Dynamics(nn.Module):
    """dz/dt = f(z), time-invariant; `nfe` counts calls (function evaluations), forward and adjoint alike."""

    def __init__(self, dim: int, units: int, layers: int) -> None:
        super().__init__()
        self.net = mlp(dim, units, layers, dim)
        self.nfe = 0
        # The reference's initialisation (weights N(0, 0.1^2), biases 0): f(0) = 0 and near the origin f is the
        # random linear map W_out ... W_in, whose complex eigenvalues make z(t) turn from the first step. PyTorch's
        # default biases give f a constant drift instead (trials in docs/benchmarks.md)
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=0.1)
                nn.init.zeros_(layer.bias)

    def forward(self, t: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:  # time-invariant: t is not used
        self.nfe += 1
        return cast(torch.Tensor, self.net(z))


class GRUEncoder(nn.Module):
    """Chen et al.: a GRU over the steps (newest first); the state after each context's own last step."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(features, hidden, batch_first=True)

    def forward(self, batch: EncoderBatch) -> torch.Tensor:
        out: torch.Tensor
        out, _ = self.gru(batch.steps)  # (B, L, H); step j only sees steps <= j, so padding after it is inert
        return out[torch.arange(out.shape[0], device=out.device), batch.lengths - 1]


class ODERNNEncoder(nn.Module):
    """Rubanova et al.'s ODE-RNN run backwards: GRU update at each observation, then one Euler step of its own
    ODE across the gap to the next older observation (or to the window start). Padding steps leave the state as is.
    """

    def __init__(self, features: int, hidden: int, units: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(features, hidden)
        self.ode = mlp(hidden, units, 1, hidden)
        self.hidden = hidden

    def forward(self, batch: EncoderBatch) -> torch.Tensor:
        """(B, H) the state after each context's own last step; model/solver/odernn.py runs the loop (and its
        backward)."""
        return odernn(self, batch)


class LatentODE(nn.Module):
    """q(z0 | context) -> z(t) by the ODE -> p(x(t) | z(t)) Gaussian with fixed std (normalised units)."""

    def __init__(self, channels: int, config: ModelConfig) -> None:
        super().__init__()
        features = 2 * channels + 1
        if config.encoder == "gru":
            self.encoder: nn.Module = GRUEncoder(features, config.hidden_dim)
        else:
            self.encoder = ODERNNEncoder(features, config.hidden_dim, config.units)
        self.head = mlp(config.hidden_dim, config.units, 1, 2 * config.latent_dim)
        with torch.no_grad():  # q(z0)'s std starts near softplus(0) = 0.69: the k samples of z0 land far apart, the
            # IWAE bound rewards the best, and the dynamics learn early that z0 decides the trajectory (a narrow
            # start sat on the predict-the-mean plateau: docs/benchmarks.md)
            _output(self.head).bias[config.latent_dim:].zero_()
        self.dynamics = Dynamics(config.latent_dim, config.units, config.dynamics_layers)
        self.decoder = mlp(config.latent_dim, config.units, config.decoder_layers, channels)
        self.obs_std = config.obs_std
        if config.learn_obs_std:
            self.log_obs_std = nn.Parameter(torch.full((channels,), math.log(config.obs_std)))

    def observation_std(self) -> torch.Tensor:
        """(C,) observation noise std per channel, normalised units: fixed, or learned (floored at obs_std / 10)."""
        if hasattr(self, "log_obs_std"):
            return self.log_obs_std.exp().clamp(min=self.obs_std / 10)
        out = _output(self.decoder)
        return torch.full((out.out_features,), self.obs_std, device=out.weight.device, dtype=out.weight.dtype)

    def posterior(self, batch: EncoderBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of q(z0), each (B, D); z0 lives at model time 0, the window start."""
        mean, raw = self.head(self.encoder(batch)).chunk(2, dim=-1)
        return mean, nn.functional.softplus(raw) + 1e-4

    def decode_at(self, z0: torch.Tensor, tgt: TargetBatch | RowTargets,
                  solve: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The decoded mean (N, T, C) at each window's own targets (RowTargets: the solve on its grid, read by
        model/solver/dense.py; z0's N rows are the B windows repeated N / B times) or (N, U, C) at the union's
        times (TargetBatch). solve(z0 (N, D), times) -> (len(times), N, D)."""
        if isinstance(tgt, RowTargets):
            on_grid = solve(z0, tgt.grid)  # (G, N, D)
            at = tgt.at.repeat(z0.shape[0] // tgt.at.shape[0], 1)
            return cast(torch.Tensor, self.decoder(hermite(tgt.grid, on_grid, lambda z: self.dynamics(None, z), at)))
        return cast(torch.Tensor, self.decoder(solve(z0, tgt.times))).transpose(0, 1)

    def loss(self, enc: EncoderBatch, tgt: TargetBatch | RowTargets, eps: torch.Tensor, kl_coef: float,
             solve: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """IWAE loss (scalar) and the squared error of the decoded mean per observed point (scalar, normalised).

        eps: (k, B, D) standard normal draws; solve(z0 (N, D), times (U,)) -> (U, N, D). With RowTargets the
        solve runs on its grid and each window's own targets are read from it (model/solver/dense.py).
        As the reference: log-likelihood averaged per observed point of a window, KL averaged over latent dims,
        loss = -mean_B logsumexp_k(ll - kl_coef * kl). A point whose mask is 0 contributes exactly nothing.
        """
        mean, std = self.posterior(enc)
        k, batch, dim = eps.shape
        z0 = (mean + std * eps).reshape(k * batch, dim)
        decoded = self.decode_at(z0, tgt, solve)  # (k*B, T or U, C)
        xhat = decoded.reshape(k, batch, *decoded.shape[1:])  # (k, B, T or U, C)
        mask = tgt.mask
        err = torch.where(mask > 0, xhat - tgt.values, torch.zeros_like(xhat))
        count = mask.sum(dim=(1, 2)).clamp(min=1)  # (B,)
        sigma = self.observation_std()  # (C,)
        log_norm = torch.log(sigma) + 0.5 * math.log(2 * math.pi)
        ll = -(0.5 * (err / sigma) ** 2 + log_norm * mask).sum(dim=(2, 3)) / count  # (k, B)
        kl = (-torch.log(std) + 0.5 * (std**2 + mean**2) - 0.5).mean(dim=-1)  # (B,) KL(q || N(0, I)) per dim
        loss = -torch.logsumexp(ll - kl_coef * kl, dim=0).mean()
        mse = (err**2).sum(dim=(2, 3)).div(count).mean()
        return loss, mse

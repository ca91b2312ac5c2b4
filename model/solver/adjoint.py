"""The adjoint method for training (Chen et al. 2018, §2), written for our dynamics MLP.

Gradients come from solving the adjoint ODE backwards in time, so memory stays flat however many steps the
solver takes. torchdiffeq's `odeint_adjoint` does the same but costs 3-4x plain backprop here: it evaluates each
vector-Jacobian product through a fresh autograd graph (about 1 ms per evaluation of the augmented state), and it
restarts its backward solve at every output time with a new initial step-size search. This module:

- computes f(z), a·∂f/∂z and a·∂f/∂θ for the Tanh MLP by hand (folded.py; no autograd graph);
- integrates the adjoint state backwards with the lean dopri5 of rk.py, one segment per output time, each
  segment starting from the step size the previous one ended with;
- at each output time resets z to the forward solution there and adds dL/dz(t_i) to a (as torchdiffeq does);
- with `seminorm` (Kidger et al. 2021, as torchdiffeq's option), leaves g = ∫ a·∂f/∂θ out of the step-size error
  norm, and then out of the solver's state too (`_seminorm_backward`); without it, g rides in the state [z, a, g].

Forward values are rk.py's dopri5 (torchdiffeq's steps); gradients match backprop through the solver to solver
tolerance (tests/model/test_training.py checks 1e-4 in float64).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

import torch
from torch import nn

from model.errors import SolverError
from model.solver.fastpath import tanh_mlp
from model.solver.folded import FoldedMLP
from model.solver.rk import SOLUTION_WEIGHTS, Hits, RKFailure, dopri5

if TYPE_CHECKING:
    from model.network import Dynamics

__all__ = ["adjoint_odeint"]

# (dynamics, its Linear layers, rtol, atol, max_steps, adjoint_rtol, adjoint_atol, seminorm, the hint for a
# SolverError)
_Settings = tuple["Dynamics", list[nn.Linear], float, float, int, float, float, bool, str]
# one evaluation's layer inputs and the gradients at the layers' outputs (FoldedMLP.backward)
_Evaluation = tuple[list[torch.Tensor], list[torch.Tensor]]


class _Context(Protocol):
    """What `_Adjoint.forward` leaves on autograd's ctx for `backward` (and autograd's own saved tensors)."""

    settings: _Settings
    mlp: FoldedMLP
    saved_tensors: tuple[torch.Tensor, ...]

    def save_for_backward(self, *tensors: torch.Tensor) -> None: ...


def adjoint_odeint(dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor, *, rtol: float, atol: float,
                   max_steps: int, adjoint_rtol: float, adjoint_atol: float, seminorm: bool,
                   hint: str) -> torch.Tensor:
    """z at `times` (U,) increasing from z0 (N, D) by dopri5: (U, N, D), differentiable by the adjoint method with
    respect to z0 and dynamics' parameters. `dynamics.net` must be an nn.Sequential of Linear layers with Tanh
    between them (fastpath.py)."""
    layers = tanh_mlp(dynamics.net)  # NotFastPath for any other network: never a different function
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    settings: _Settings = (dynamics, layers, rtol, atol, max_steps, adjoint_rtol, adjoint_atol, seminorm, hint)
    return cast(torch.Tensor, _Adjoint.apply(z0, times, settings, *params))


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx: _Context, z0: torch.Tensor, times: torch.Tensor, settings: _Settings,
                *params: torch.Tensor) -> torch.Tensor:  # params: inputs only so that autograd asks for their gradients
        dynamics, layers, rtol, atol, max_steps, *_, hint = settings
        mlp = FoldedMLP(layers)  # also the backward pass's vector-Jacobian products

        def f(z: torch.Tensor) -> torch.Tensor:
            dynamics.nfe += 1
            return mlp(z)[0]

        with torch.no_grad():
            try:
                zt = torch.stack(dopri5(f, z0, times.tolist(), rtol=rtol, atol=atol, max_steps=max_steps)[0])
            except RKFailure as exc:
                raise SolverError(f"dopri5 failed: {exc}. {hint}") from exc
        ctx.settings, ctx.mlp = settings, mlp
        ctx.save_for_backward(times, zt)
        return zt

    @staticmethod
    def backward(ctx: _Context, grad_zt: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        times, zt = ctx.saved_tensors
        with torch.no_grad():
            if ctx.settings[7]:  # seminorm
                grads = _seminorm_backward(ctx.settings, ctx.mlp, times, zt, grad_zt)
            else:
                grads = _full_backward(ctx.settings, ctx.mlp, times, zt, grad_zt, seminorm=False)
        return (grads[0], None, None, *grads[1:])


def _full_backward(settings: _Settings, mlp: FoldedMLP, times: torch.Tensor, zt: torch.Tensor, grad_zt: torch.Tensor,
                   seminorm: bool) -> list[torch.Tensor]:
    """The backward solve of the augmented state [z, a, g]: gradients of z0 and of the parameters. With
    `seminorm`, the steps of `_seminorm_backward` (tests compare the two)."""
    dynamics, layers, _, _, max_steps, rtol, atol, _, hint = settings
    n = zt[0].numel()
    shape = zt.shape[1:]
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    sizes = [p.numel() for p in params]

    def derivative(y: torch.Tensor) -> torch.Tensor:  # d/ds of [z, a, g], s = -t (forwards in s)
        dynamics.nfe += 1
        f, inputs = mlp(y[:n].view(shape))
        vjp_z, outputs = mlp.backward(inputs, y[n:2 * n].view(shape))
        vjp_p = mlp.param_vjp(inputs, outputs)
        return torch.cat([-f.reshape(-1), vjp_z.reshape(-1), *(g.reshape(-1) for g in vjp_p)])

    def norm(x: torch.Tensor) -> torch.Tensor:
        parts = [x[:n], x[n:2 * n]] if seminorm else [x[:n], x[n:2 * n], x[2 * n:]]
        return max(p.pow(2).mean().sqrt() for p in parts)

    y = torch.cat([zt[-1].reshape(-1), grad_zt[-1].reshape(-1), zt.new_zeros(sum(sizes))])
    step = None
    s = (-times).tolist()
    for i in range(times.numel() - 1, 0, -1):
        try:
            (_, y), step = dopri5(derivative, y, [s[i], s[i - 1]], rtol=rtol, atol=atol, norm=norm,
                                  first_step=step, max_steps=max_steps)
        except RKFailure as exc:
            raise SolverError(f"dopri5 failed in the adjoint (backward) solve: {exc}. {hint}") from exc
        y[:n] = zt[i - 1].reshape(-1)  # the forward solution, as torchdiffeq does
        y[n:2 * n] += grad_zt[i - 1].reshape(-1)
    if not torch.isfinite(y).all():
        raise SolverError(f"dopri5 produced a non-finite adjoint state. {hint}")
    grads = [g.view_as(p) for g, p in zip(torch.split(y[2 * n:], sizes), params, strict=True)]
    return [y[n:2 * n].view(shape), *grads]


def _seminorm_backward(settings: _Settings, mlp: FoldedMLP, times: torch.Tensor, zt: torch.Tensor,
                       grad_zt: torch.Tensor) -> list[torch.Tensor]:
    """The backward solve with the seminorm: only [z, a] go through dopri5, and g = ∫ a·∂f/∂θ is summed alongside.

    g never feeds back into z or a, and the seminorm leaves it out of the step-size control, so dopri5 would
    integrate it with the step's own weights: dt·Σ_j b_j k_j over a whole step, dt·Σ_j w_j(x) k_j (its dense
    output) over the part of the last step up to an output time. This sums exactly that from each accepted
    step's stage evaluations, without carrying the parameters' size through every stage of every step.
    """
    dynamics, _, _, _, max_steps, rtol, atol, _, hint = settings
    rows = zt.shape[1]
    weight_sums, output_sums = mlp.sums(rows, zt)
    trial: list[_Evaluation] = []  # evaluations since the last accepted step
    first: list[_Evaluation] = []  # the evaluation that is the next step's k_0

    def derivative(y: torch.Tensor) -> torch.Tensor:  # d/ds of [z, a], s = -t (forwards in s)
        f, inputs = mlp(y[0])
        vjp, outputs = mlp.backward(inputs, y[1])
        trial.append((inputs, outputs))
        return torch.stack([f.neg_(), vjp])

    def on_step(dt: float, hits: Hits) -> None:
        if not first:
            first.append(trial[0])  # f(y0) of this segment, the first call
        weights = hits[0][1] if hits else SOLUTION_WEIGHTS
        for w, (inputs, outputs) in zip(weights, [first[0], *trial[-6:]], strict=True):
            if w != 0.0:
                mlp.accumulate(inputs, outputs, weight_sums, output_sums, scale=w * dt)
        first[0] = trial[-1]
        dynamics.nfe += len(trial)
        trial.clear()

    def norm(x: torch.Tensor) -> torch.Tensor:  # max of the RMS norms of the z and a parts
        return x.pow(2).mean(dim=(1, 2)).max().sqrt()

    y = torch.stack([zt[-1], grad_zt[-1]])
    step = None
    s = (-times).tolist()
    for i in range(times.numel() - 1, 0, -1):
        first.clear()
        try:
            (_, y), step = dopri5(derivative, y, [s[i], s[i - 1]], rtol=rtol, atol=atol, norm=norm,
                                  first_step=step, max_steps=max_steps, on_step=on_step)
        except RKFailure as exc:
            raise SolverError(f"dopri5 failed in the adjoint (backward) solve: {exc}. {hint}") from exc
        finally:
            dynamics.nfe += len(trial)
            trial.clear()
        y[0] = zt[i - 1]  # the forward solution, as torchdiffeq does
        y[1] += grad_zt[i - 1]
    if not torch.isfinite(y).all() or not all(torch.isfinite(w).all() for w in weight_sums):
        raise SolverError(f"dopri5 produced a non-finite adjoint state. {hint}")
    return [y[1], *mlp.param_grads(weight_sums, output_sums)]

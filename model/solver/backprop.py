"""Backprop through dopri5 for our dynamics MLP, with the backward pass written by hand.

`gradient="backprop"` differentiates the solver's own arithmetic (discretise-then-optimise): the same gradients
autograd finds through rk.py's stages, from a forward solve without autograd's bookkeeping. Autograd records
a dozen nodes per function evaluation (three Linear layers, two tanh, the stage sums) and walks them back one by
one; here the forward solve runs under no_grad (the MLP in folded.py's form) keeping each evaluation's layer
activations, and the backward replays the accepted steps in reverse:

- step n maps y_n to y_{n+1} = y_n + dt·Σ_j b_j k_j through stages s_i = y_n + dt·Σ_{j<i} a_ij k_j, k_i = f(s_i);
  k_6 = f(y_{n+1}) is step n+1's k_0 (first same as last);
- an output inside a step is the dense output y_n + dt·Σ_j w_j(x) k_j, a polynomial in the fraction x of the step
  (torchdiffeq's 4th-order interpolant written out per stage; w(1) = b);
- the gradient reaches y_n directly and through each k_i = f(s_i) by the MLP's vector-Jacobian product, stage
  by stage from the last, each evaluation adding its share of the weight gradients.

Rejected steps take no part, as in autograd. tests/model/test_backprop.py checks values and gradients against
autograd through rk.py in float64.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from model.errors import SolverError
from model.solver.fastpath import tanh_mlp
from model.solver.folded import FoldedMLP
from model.solver.rk import STAGE_WEIGHTS, STAGES, Hits, RKFailure, dopri5

if TYPE_CHECKING:
    from model.network import Dynamics

__all__ = ["backprop_odeint"]

# (dynamics, its Linear layers, rtol, atol, max_steps, the hint for a SolverError)
_Settings = tuple["Dynamics", list[nn.Linear], float, float, int, str]


class _Context(Protocol):
    """What `_Backprop.forward` leaves on autograd's ctx for `backward`: the MLP, each accepted step's (dt, outputs
    reached) and each evaluation's layer inputs."""

    mlp: FoldedMLP
    steps: list[tuple[float, Hits]]
    evaluations: list[list[torch.Tensor]]


def backprop_odeint(dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor, *, rtol: float, atol: float,
                    max_steps: int, hint: str) -> torch.Tensor:
    """z at `times` (U,) increasing from z0 (N, D) by dopri5: (U, N, D), differentiable (by the hand-written
    backward above) with respect to z0 and dynamics' parameters. `dynamics.net` must be an nn.Sequential of Linear
    layers with Tanh between them (fastpath.py)."""
    layers = tanh_mlp(dynamics.net)  # NotFastPath for any other network: never a different function
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    return cast(torch.Tensor, _Backprop.apply(z0, times, (dynamics, layers, rtol, atol, max_steps, hint), *params))


class _Backprop(torch.autograd.Function):
    @staticmethod
    def forward(ctx: _Context, z0: torch.Tensor, times: torch.Tensor, settings: _Settings,
                *params: torch.Tensor) -> torch.Tensor:  # params: inputs only so that autograd asks for their gradients
        dynamics, layers, rtol, atol, max_steps, hint = settings
        mlp = FoldedMLP(layers)
        trial: list[list[torch.Tensor]] = []  # each evaluation's layer inputs since the last accepted step
        evaluations: list[list[torch.Tensor]] = []  # those of f(z0), then 6 per accepted step (stages 1-6)
        steps: list[tuple[float, Hits]] = []

        def f(z: torch.Tensor) -> torch.Tensor:
            out, inputs = mlp(z)
            trial.append(inputs)
            return out

        def on_step(dt: float, hits: Hits) -> None:
            if not evaluations:
                evaluations.append(trial[0])  # f(z0), the first call
            evaluations.extend(trial[-(STAGES - 1):])
            dynamics.nfe += len(trial)
            trial.clear()
            steps.append((dt, hits))

        with torch.no_grad():
            try:
                zt = torch.stack(dopri5(f, z0, times.tolist(), rtol=rtol, atol=atol, max_steps=max_steps,
                                        on_step=on_step)[0])
            except RKFailure as exc:
                raise SolverError(f"dopri5 failed: {exc}. {hint}") from exc
            finally:
                dynamics.nfe += len(trial)
        ctx.mlp, ctx.steps, ctx.evaluations = mlp, steps, evaluations
        return zt

    @staticmethod
    @once_differentiable
    def backward(ctx: _Context, grad_zt: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        mlp, steps, evaluations = ctx.mlp, ctx.steps, ctx.evaluations
        layers = mlp.layers
        if not steps:  # a single output time: z(t0) = z0
            return (grad_zt[0], None, None, *(torch.zeros_like(p) for layer in layers for p in layer.parameters()))
        sums = mlp.sums(grad_zt.shape[1], grad_zt)

        def vjp(e: int, g: torch.Tensor) -> torch.Tensor:  # g·∂f/∂z at evaluation e, summing g·∂f/∂θ
            return mlp.backward(evaluations[e], g, sums)[0]

        dtype, device = grad_zt.dtype, grad_zt.device
        grad_next = torch.zeros_like(grad_zt[0])  # at y_{n+1}, from the steps after step n
        grad_k = grad_zt.new_zeros(STAGES, *grad_zt.shape[1:])
        carry = None  # at step n+1's k_0, which is step n's k_6
        a = [torch.tensor(row, dtype=dtype, device=device)[:i, None, None] for i, row in enumerate(STAGE_WEIGHTS)]
        # each output's dense-output weights, one row per output time after the first (step n's outputs are
        # consecutive and follow step n - 1's)
        weights = torch.tensor([w for _, hits in steps for _, w in hits], dtype=dtype, device=device).view(-1, STAGES)
        for n in range(len(steps) - 1, -1, -1):
            dt, hits = steps[n]
            grad_k.zero_()
            if hits:  # outputs in this step: y_n + dt Σ_j w_j(x) k_j
                outputs = grad_zt[hits[0][0] : hits[-1][0] + 1]
                grad_k.view(STAGES, -1).addmm_(weights[hits[0][0] - 1 : hits[-1][0]].t(),
                                               outputs.reshape(len(hits), -1), alpha=dt)
                grad_here = outputs.sum(dim=0)  # at y_n
            else:
                grad_here = torch.zeros_like(grad_next)
            if carry is not None:
                grad_k[STAGES - 1] += carry
            # stage i of step n is evaluation 6n + i; stage 6's input is y_{n+1}
            grad_s = grad_next + vjp(6 * n + STAGES - 1, grad_k[STAGES - 1])
            for i in range(STAGES - 1, 0, -1):
                if i < STAGES - 1:
                    grad_s = vjp(6 * n + i, grad_k[i])
                grad_here += grad_s
                grad_k[:i].addcmul_(a[i], grad_s, value=dt)
            carry = grad_k[0].clone()
            grad_next = grad_here
        assert carry is not None  # steps is not empty: the loop ran
        grad_z0 = grad_next + grad_zt[0] + vjp(0, carry)  # k_0 of the first step is f(z0)
        return (grad_z0, None, None, *mlp.param_grads(*sums))

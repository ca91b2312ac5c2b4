"""ODE solves: rk.py's dopri5 (or torchdiffeq's other solvers) for training, by the adjoint (adjoint.py)
or backprop (backprop.py); per-sample step control for forecasts.

torchdiffeq takes one adaptive step size for a whole batch, so a forecast solved with it would depend on what else
shares the batch. Forecasts therefore use torchode (a step size and accept/reject per sample) for adaptive solvers,
and, for fixed-step solvers, torchdiffeq on a grid that depends only on the step size (see `forecast_solve`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torchode
from torchdiffeq import odeint, odeint_adjoint

from model.config import ADAPTIVE_SOLVERS, ModelConfig
from model.errors import SolverError
from model.solver.adjoint import adjoint_odeint
from model.solver.backprop import backprop_odeint
from model.solver.fastpath import is_tanh_mlp
from model.solver.rk import RKFailure, dopri5

if TYPE_CHECKING:
    from model.network import Dynamics

__all__ = ["train_solve", "forecast_solve"]

_HINT = ("Hint: the learned dynamics became stiff or exploded. Try looser rtol/atol, a larger max_steps, a fixed-step "
         "solver ('rk4'), a lower learning_rate, or a smaller time_span.")


def train_solve(dynamics: Dynamics, z0: torch.Tensor, times: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """z at `times` (U,) increasing, times[0] = 0, from z0 (N, D): (U, N, D). All N share the step size."""
    if config.solver in ADAPTIVE_SOLVERS:
        options: dict[str, float | str] = {"max_num_steps": config.max_steps}
    else:
        options = {"step_size": config.step_size}
    adjoint_rtol, adjoint_atol = config.adjoint_rtol or config.rtol, config.adjoint_atol or config.atol
    plain = config.gradient == "backprop" or not torch.is_grad_enabled()
    fast = is_tanh_mlp(dynamics.net)  # the hand-written gradients (fastpath.py); autograd for any other net
    try:
        if config.solver == "dopri5" and plain and torch.is_grad_enabled() and fast:
            zt = backprop_odeint(dynamics, z0, times, rtol=config.rtol, atol=config.atol, max_steps=config.max_steps,
                                 hint=_HINT)  # backprop.py: the same gradients, the backward by hand
        elif config.solver == "dopri5" and plain:  # rk.py: torchdiffeq's steps with a fraction of its overhead
            zt = torch.stack(dopri5(lambda z: dynamics(None, z), z0, times.tolist(), rtol=config.rtol,
                                    atol=config.atol, max_steps=config.max_steps)[0])
        elif config.solver == "dopri5" and fast:
            zt = adjoint_odeint(dynamics, z0, times, rtol=config.rtol, atol=config.atol, max_steps=config.max_steps,
                                adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol, seminorm=config.seminorm,
                                hint=_HINT)
        elif plain:
            zt = odeint(dynamics, z0, times, rtol=config.rtol, atol=config.atol, method=config.solver,
                        options=options)
        else:
            adjoint_options = dict(options)
            if config.seminorm:
                adjoint_options["norm"] = "seminorm"
            zt = odeint_adjoint(
                dynamics, z0, times, rtol=config.rtol, atol=config.atol, method=config.solver, options=options,
                adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol,
                adjoint_options=adjoint_options, adjoint_params=tuple(dynamics.parameters()),
            )
    except (AssertionError, RKFailure) as exc:  # torchdiffeq reports numerical failure with bare asserts
        raise SolverError(f"{config.solver} failed: {exc}. {_HINT}") from exc
    if not torch.isfinite(zt).all():
        raise SolverError(f"{config.solver} produced a non-finite latent state. {_HINT}")
    return zt


def forecast_solve(dynamics: Dynamics, z0: torch.Tensor, t_eval: torch.Tensor, config: ModelConfig,
                   group: int = 1) -> tuple[torch.Tensor, int]:
    """z at each group's own times: z0 (N, D) at model time 0, t_eval (N / group, Q) non-decreasing, >= 0, one row
    per `group` consecutive rows of z0 (one forecast request's samples), which share an adaptive step size.

    Returns (N, Q, D) and the number of function evaluations. A group depends only on its own rows of z0 and its
    t_eval row's values (not on other groups), so a caller may pad t_eval by repeating a row's last time.
    """
    if z0.shape[0] != t_eval.shape[0] * group:
        raise ValueError(f"z0 has {z0.shape[0]} rows; t_eval's {t_eval.shape[0]} rows x group {group} differ")
    if config.solver in ADAPTIVE_SOLVERS:
        return _torchode_solve(dynamics, z0, t_eval, config, group)
    return _fixed_grid_solve(dynamics, z0, t_eval.repeat_interleave(group, dim=0), config)


def _torchode_solve(dynamics: Dynamics, z0: torch.Tensor, t_eval: torch.Tensor, config: ModelConfig,
                    group: int) -> tuple[torch.Tensor, int]:
    # torchode controls the step per row of its state: a group's samples side by side in one row share a step
    # size, set by the error norm over all of them (as torchdiffeq does for a whole batch), so the solver steps,
    # checks and interpolates once per group rather than once per sample.
    n, dim = z0.shape
    term = torchode.ODETerm(lambda t, y: dynamics(t, y.reshape(-1, dim)).reshape(y.shape))
    method_class = {"dopri5": torchode.Dopri5, "heun": torchode.Heun}[ADAPTIVE_SOLVERS[config.solver]]
    controller = torchode.IntegralController(atol=config.atol, rtol=config.rtol, term=term)
    solver = torchode.AutoDiffAdjoint(method_class(term=term), controller, max_steps=config.max_steps)
    problem = torchode.InitialValueProblem(y0=z0.reshape(n // group, group * dim),
                                           t_start=torch.zeros_like(t_eval[:, 0]), t_eval=t_eval)
    solution = solver.solve(problem)
    status = solution.status
    if bool((status != 0).any()):
        code = int(status.max())
        reason = torchode.Status(code).name.lower().replace("_", " ")
        raise SolverError(f"{config.solver} failed ({reason}, max_steps={config.max_steps}). {_HINT}")
    if not torch.isfinite(solution.ys).all():
        raise SolverError(f"{config.solver} produced a non-finite latent state. {_HINT}")
    ys = solution.ys.reshape(n // group, t_eval.shape[1], group, dim).transpose(1, 2).reshape(n, -1, dim)
    return ys, int(solution.stats["n_f_evals"].sum())


def _fixed_grid_solve(dynamics: Dynamics, z0: torch.Tensor, t_eval: torch.Tensor,
                      config: ModelConfig) -> tuple[torch.Tensor, int]:
    # torchdiffeq's fixed grid is arange(0, n) * step_size, its last point replaced by the last output time. Ending
    # the output times on a grid point keeps every grid point (and so every answer) independent of the batch.
    step = config.step_size
    last = torch.ceil(t_eval.max().detach() / step) + 1
    if float(last) > config.max_steps:  # fixed steps never give up on their own: a far time would run for ever
        raise SolverError(f"{config.solver} would take {float(last):.3g} steps of {step:g} to reach model time "
                          f"{float(t_eval.max()):.6g}, more than max_steps={config.max_steps}: ask for times "
                          "nearer the context, or raise max_steps or step_size")
    end = (torch.arange(int(last.item()) + 1, dtype=t_eval.dtype, device=t_eval.device) * step)[-1:]
    times, inverse = torch.unique(torch.cat([t_eval.reshape(-1), t_eval.new_zeros(1), end]), return_inverse=True)
    before = dynamics.nfe
    zt = train_solve(dynamics, z0, times, config)  # (U, N, D)
    picked = inverse[: t_eval.numel()].reshape(t_eval.shape)  # (N, Q) index into times
    rows = torch.arange(z0.shape[0], device=z0.device)[:, None]
    return zt[picked, rows], dynamics.nfe - before

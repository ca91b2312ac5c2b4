"""A lean adaptive Dormand–Prince 5(4) solver: torchdiffeq's dopri5 algorithm with a fraction of its overhead.

Training solves are small (a batch of 150 latent states of 10 numbers), so each step's cost is Python and op
dispatch, not arithmetic. torchdiffeq's dopri5 spends ~0.3 ms of each 0.45 ms function evaluation there: float64
time tensors, a (N, D, 7) stage tensor reduced along its last axis at every stage, tensor-valued step-size control.
This solver takes the same steps (same tableau, error norm, initial step choice, step-size controller and 4th-order
dense output as torchdiffeq 0.2.5; tests/model/test_rk.py checks values and step counts against it) with:

- the stages as a list, each stage input a chain of scaled adds;
- times and step sizes as Python floats (one device sync per step, for the accept test, as torchdiffeq has too):
  backprop differentiates through the stages, not through the step-size choice;
- a function `f(y)` of the state alone (the dynamics are time-invariant).

All rows share one step size, as in torchdiffeq. Failures raise `RKFailure` (the caller wraps it with a hint).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

__all__ = ["dopri5", "RKFailure", "interpolation_weights", "STAGES", "STAGE_WEIGHTS", "SOLUTION_WEIGHTS", "Hits"]

Func = Callable[[torch.Tensor], torch.Tensor]
Norm = Callable[[torch.Tensor], torch.Tensor]
# the outputs an accepted step reaches: (output index, its dense-output weights), as `on_step` receives them
Hits = list[tuple[int, Sequence[float]]]

_BETA = (
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),  # = the 5th-order solution (FSAL)
)
_ERROR = (35 / 384 - 1951 / 21600, 0.0, 500 / 1113 - 22642 / 50085, 125 / 192 - 451 / 720,
          -2187 / 6784 - -12231 / 42400, 11 / 84 - 649 / 6300, -1 / 60)
_MID = (6025192743 / 30085553152 / 2, 0.0, 51252292925 / 65400821598 / 2, -2691868925 / 45128329728 / 2,
        187940372067 / 1594534317056 / 2, -1776094331 / 19743644256 / 2, 11237099 / 235043384 / 2)
_SAFETY, _IFACTOR, _DFACTOR, _ORDER = 0.9, 10.0, 0.2, 5
STAGES = 7
# STAGE_WEIGHTS[i][j]: stage i's input is y0 + dt·Σ_j STAGE_WEIGHTS[i][j] k_j; SOLUTION_WEIGHTS: y1's (stage 6's)
STAGE_WEIGHTS = tuple(tuple(row) + (0.0,) * (STAGES - len(row)) for row in ((), *_BETA))
SOLUTION_WEIGHTS = STAGE_WEIGHTS[-1]


class RKFailure(RuntimeError):
    """The solve gave up: too many steps, step-size underflow or a non-finite state."""


def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean().sqrt()


def dopri5(f: Func, y0: torch.Tensor, times: list[float], *, rtol: float, atol: float, max_steps: int,
           norm: Norm = rms_norm, first_step: float | None = None,
           on_step: Callable[[float, Hits], None] | None = None,
           ) -> tuple[list[torch.Tensor], float]:
    """y at each of `times` (increasing, times[0] the start) from y0: a list of tensors shaped as y0, and the step
    size the solver would take next (to start a following solve with).

    Output times inside a step come from the step's dense output, as torchdiffeq does: the last step may end past
    times[-1]. At most `max_steps` steps per call. `on_step(dt, [(output index, w), ...])` is called after each
    accepted step, w the output's dense-output weights (`interpolation_weights`; SOLUTION_WEIGHTS for an output at
    the step's end): backprop.py replays the accepted steps backwards.
    """
    f0 = f(y0)
    dt = first_step if first_step is not None else _initial_step(f, y0, f0, rtol, atol, norm)
    out = [y0]
    t0, y, steps = times[0], y0, 0
    index = 1
    while index < len(times):
        if steps >= max_steps:
            raise RKFailure(f"max_num_steps exceeded ({steps}>={max_steps})")
        if not math.isfinite(dt) or t0 + dt <= t0:
            raise RKFailure(f"underflow in dt {dt}")
        y1, f1, error, k = _step(f, y, f0, dt)
        with torch.no_grad():
            ratio = float(norm(error / (atol + rtol * torch.maximum(y.abs(), y1.abs()))))
        if not math.isfinite(ratio):
            raise RKFailure("non-finite values in the state")
        steps += 1
        if ratio <= 1:
            t1 = t0 + dt
            hits: Hits = []
            while index < len(times) and times[index] <= t1:
                exact = times[index] == t1
                weights = SOLUTION_WEIGHTS if exact else interpolation_weights((times[index] - t0) / dt)
                out.append(y1 if exact else _interpolate(y, k, dt, weights))
                hits.append((index, weights))
                index += 1
            if on_step is not None:
                on_step(dt, hits)
            t0, y, f0 = t1, y1, f1
        dt = dt * (_IFACTOR if ratio == 0 else
                     min(_IFACTOR, max(_SAFETY / ratio ** (1 / _ORDER), 1.0 if ratio < 1 else _DFACTOR)))
    return out, dt


def _step(f: Func, y0: torch.Tensor, f0: torch.Tensor,
          dt: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """One dopri5 step of size dt: y1, f(y1), the error estimate and the seven stage derivatives."""
    k = [f0]
    yi = y0
    for row in _BETA:
        yi = y0
        for b, kj in zip(row, k, strict=False):
            if b != 0.0:
                yi = yi.add(kj, alpha=b * dt)
        k.append(f(yi))
    error = k[0] * (_ERROR[0] * dt)
    for e, kj in zip(_ERROR[1:], k[1:], strict=True):
        if e != 0.0:
            error = error.add(kj, alpha=e * dt)
    return yi, k[-1], error, k


def interpolation_weights(x: float) -> list[float]:
    """w_j(x): torchdiffeq's 4th-order dense output at fraction x of a step is y0 + dt·Σ_j w_j(x) k_j.

    torchdiffeq fits a quartic through y0, y1, the midpoint estimate y0 + dt·Σ_j _MID_j k_j and the end slopes k_0,
    k_6; with y1 = y0 + dt·Σ_j b_j k_j that polynomial's coefficients are these, per stage (w(0) = 0, w(1) = b).
    """
    weights = []
    for j, (b_j, m_j) in enumerate(zip(SOLUTION_WEIGHTS, _MID, strict=True)):
        first, last = float(j == 0), float(j == len(_MID) - 1)
        a = 2 * (last - first) - 8 * b_j + 16 * m_j
        b = 5 * first - 3 * last + 14 * b_j - 32 * m_j
        c = last - 4 * first - 5 * b_j + 16 * m_j
        weights.append(x * (first + x * (c + x * (b + x * a))))
    return weights


def _interpolate(y0: torch.Tensor, k: list[torch.Tensor], dt: float, weights: Sequence[float]) -> torch.Tensor:
    """The dense output with `interpolation_weights` w of the step from y0 with stage derivatives k."""
    out = y0
    for w, kj in zip(weights, k, strict=True):
        if w != 0.0:
            out = out.add(kj, alpha=w * dt)
    return out


def _initial_step(f: Func, y0: torch.Tensor, f0: torch.Tensor, rtol: float, atol: float, norm: Norm) -> float:
    """Hairer, Nørsett & Wanner's starting step (Solving ODEs I, II.4), as torchdiffeq chooses it."""
    with torch.no_grad():
        scale = atol + y0.abs() * rtol
        d0, d1 = float(norm(y0 / scale)), float(norm(f0 / scale))
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        f1 = f(y0 + h0 * f0)
        d2 = float(norm((f1 - f0) / scale)) / h0
        if d1 <= 1e-15 and d2 <= 1e-15:
            h1 = max(1e-6, h0 * 1e-3)
        else:
            h1 = (0.01 / max(d1, d2)) ** (1 / _ORDER)
    return min(100 * h0, h1)

"""Reading a solution between its output times: cubic Hermite interpolation with the dynamics' own slopes.

Training on irregular data solves each batch on a shared grid of times (model.data.RowTargets) and reads every
window's own targets from it here. Between two grid points g_k < g_k+1 (step h, s = (t - g_k) / h in [0, 1]):

    z(t) ~ h00(s) z_k + h10(s) h f(z_k) + h01(s) z_k+1 + h11(s) h f(z_k+1)

with f the dynamics: exact for a cubic path, error O(h^4) for a smooth one (the same order as dopri5's own dense
output). Everything is differentiable by autograd, so the solve's gradient (adjoint or backprop) reaches the grid
values and autograd carries it on from there.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["hermite"]


def hermite(grid: torch.Tensor, z: torch.Tensor, f: Callable[[torch.Tensor], torch.Tensor],
            at: torch.Tensor) -> torch.Tensor:
    """z (G, N, D) the solution at `grid` (G,) increasing; at (N, T) each row's times, within [grid[0], grid[-1]]
    -> (N, T, D) the solution at them. f: the dynamics, z (..., D) -> dz/dt (..., D)."""
    if grid.ndim != 1 or grid.numel() < 2:
        raise ValueError(f"grid must be 1-d with at least 2 times, got shape {tuple(grid.shape)}")
    if z.ndim != 3 or z.shape[0] != grid.numel() or at.ndim != 2 or at.shape[0] != z.shape[1]:
        raise ValueError(f"shapes do not match: grid {tuple(grid.shape)}, z {tuple(z.shape)}, at {tuple(at.shape)}")
    outside = (at < grid[0]) | (at > grid[-1])
    if bool(outside.any()):
        raise ValueError(f"times outside the grid [{float(grid[0])}, {float(grid[-1])}]: "
                         f"{at[outside][:3].tolist()}")
    k = (torch.searchsorted(grid, at.contiguous(), right=True) - 1).clamp(0, grid.numel() - 2)  # (N, T)
    h = (grid[k + 1] - grid[k]).unsqueeze(-1)  # (N, T, 1)
    s = (at.unsqueeze(-1) - grid[k].unsqueeze(-1)) / h
    rows = z.transpose(0, 1)  # (N, G, D)
    slopes = f(rows)

    def pick(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]))

    s2, s3 = s * s, s * s * s
    return ((2 * s3 - 3 * s2 + 1) * pick(rows, k) + (s3 - 2 * s2 + s) * h * pick(slopes, k)
            + (3 * s2 - 2 * s3) * pick(rows, k + 1) + (s3 - s2) * h * pick(slopes, k + 1))

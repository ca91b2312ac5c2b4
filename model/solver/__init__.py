"""The ODE solves, training's and forecasts', and the hand-written numerics behind them.

One entry each: `train_solve(dynamics, z0, times, config)` (gradients by config.gradient: "adjoint" or
"backprop") and `forecast_solve(...)` (per-sample step control), both in `solve.py`. Behind them, the fast code
the default network takes and the plain code it is held to:

    rk.py        our dopri5: torchdiffeq's algorithm step for step, without its per-step overhead
    adjoint.py   the adjoint ODE solved backwards with hand-written vector-Jacobian products
    backprop.py  the forward solve's own steps differentiated in reverse
    folded.py    FoldedMLP: a Linear/tanh chain with tanh folded into its weights
    odernn.py    the ODE-RNN encoder's loop and its hand-written backward (odernn_reference: the plain oracle)
    fastpath.py  which networks the fast code computes (it raises NotFastPath for any other); the rest take
                 autograd through their own modules
    dense.py     reading a solution between its output times (cubic Hermite with the dynamics' slopes): training
                 on irregular windows solves on a grid and reads every window's own targets from it
"""

from model.solver.solve import forecast_solve, train_solve

__all__ = ["train_solve", "forecast_solve"]

"""`ModelConfig`: every hyper-parameter of a latent ODE, validated, JSON-able.

Units: `window` and nothing else is in seconds. `step_size` is in model-time units, where one training window
spans `time_span` units (the time scale is computed from the training data by `fit`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from model.errors import ConfigError

__all__ = ["ModelConfig", "ADAPTIVE_SOLVERS", "FIXED_SOLVERS"]

# Adaptive solvers train with torchdiffeq and forecast with torchode's per-sample step control (so a forecast never
# depends on what else shares its batch); fixed-step solvers use torchdiffeq for both.
ADAPTIVE_SOLVERS = {"dopri5": "dopri5", "adaptive_heun": "heun"}  # torchdiffeq name -> torchode name
FIXED_SOLVERS = ("rk4", "midpoint", "euler")


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a latent ODE and its training. Defaults are what benchmarks/model_bench.py uses."""

    # --- architecture (Rubanova et al. 2019's toy-data settings unless noted)
    latent_dim: int = 10
    encoder: str = "ode_rnn"  # "ode_rnn": Rubanova et al.'s ODE-RNN, a GRU run backwards whose state its own ODE
    # moves across each gap (more accurate on the paper tasks: docs/benchmarks.md); "gru": Chen et al.'s plain GRU
    # over (value, mask, dt), one fused op, faster on long contexts
    hidden_dim: int = 150  # encoder recurrent state size (the reference's is 40; docs/benchmarks.md says why 150).
    # Encoder time grows with it
    units: int = 100  # width of every MLP hidden layer (dynamics, encoder head, ODE-RNN)
    dynamics_layers: int = 2  # hidden layers of the dynamics MLP f(z)
    decoder_layers: int = 0  # 0 = a linear decoder z -> channels, as the reference
    # --- solver
    solver: str = "dopri5"
    rtol: float = 1e-3
    atol: float = 1e-4
    max_steps: int = 2000  # per solve; more means the dynamics went stiff: SolverError instead of hanging
    step_size: float = 0.05  # fixed-step solvers only, model-time units
    # --- gradients
    gradient: str = "adjoint"  # "adjoint" (memory constant in solver steps) or "backprop" (faster, memory grows)
    seminorm: bool = True  # adjoint: leave parameter-gradient channels out of the step-size norm (fewer steps)
    adjoint_rtol: float | None = None  # None = rtol; the backward solve may be looser than the forward one
    adjoint_atol: float | None = None  # None = atol
    train_output_times: int | None = 25  # score at most this many distinct times per batch (a random subset, an
    # unbiased estimate): torchdiffeq's adjoint solves backwards segment by segment between output times, so its
    # cost grows with their number (100 times: ~10x the forward pass). None = all
    target_grid: int | None = 16  # a batch whose windows have times of their own (more distinct target times than
    # this and than twice the longest window's) is solved on this many evenly spaced times and every target read
    # from that solution (cubic Hermite with the dynamics' slopes, model/solver/dense.py): all targets scored at a
    # cost that does not grow with the batch. None = always at the targets' own times (train_output_times applies)
    # --- objective
    iwae_samples: int = 3  # k posterior samples per window; k > 1 is the IWAE bound
    obs_std: float = 0.01  # observation noise in normalised units (the reference's sigma = 0.01) ...
    learn_obs_std: bool = False  # ... or only its start: learn one per channel (floored at obs_std / 10)
    kl_warmup_epochs: int = 10  # KL weight 0 for these epochs ...
    kl_anneal_rate: float = 0.99  # ... then 1 - rate ** (epoch - warmup)
    # --- optimisation
    epochs: int = 100  # global frame: passes over the windows
    batch_size: int = 50
    learning_rate: float = 1e-2  # Adamax
    lr_schedule: str = "decay"  # "decay": x lr_decay per step (as the reference) but never above a half cosine
    # that falls to learning_rate / 100 at the last step; "cosine": that half cosine alone; "exponential": the
    # reference's, x lr_decay per step floored at learning_rate / 10 (trials in docs/benchmarks.md)
    lr_decay: float = 0.998  # per optimiser step, "decay" and "exponential" (the reference: 0.999)
    grad_clip: float = 1e4  # global gradient-norm clip; large because the per-point loss with obs_std 0.01 has
    # gradients of order 1e2-1e3 when healthy: it only stops blow-ups
    patience: int | None = None  # global frame: epochs without validation (or training-loss) improvement before
    # stopping (None: never); local frame: validation scores without a better one (None: model.local.PATIENCE)
    # --- data
    frame: str = "local"  # "local": each window is seen relative to its own context (a classical level, trend and
    # seasonal component fitted on the context, the rest scaled by the context's own spread), trained for
    # `train_steps` on windows of context + horizon at random start times; "global": one mean and std for all
    # data, whole windows of `window` seconds, `epochs` passes (the papers' set-up, and models saved before frames)
    horizon: float | None = None  # seconds past the last observation that forecasts must reach; None = chosen from
    # the data (local frame; the global frame derives it from its windows)
    context: float | None = None  # seconds of history the encoder sees; None = chosen from the data (local frame)
    seasons: tuple[float, ...] | None = None  # seasonal periods in seconds; None = detected in the data, () = none
    log_scale: bool = False  # local frame: True models a channel whose training values are all positive on the log
    # scale (level, trend and seasons multiplicative; forecasts stay above zero); False: every channel as it is
    train_steps: int = 800  # optimiser steps (local frame): the training budget, whatever the data's size
    time_limit: float | None = 240.0  # seconds of training at most (local frame); a run that hits it says so
    window: float | None = None  # global frame, seconds; None = each training sequence is one window, whole.
    # Otherwise each epoch draws about duration/window windows of this length from each sequence
    context_fraction: float = 0.5  # the encoder sees the first part of each window; the loss covers all of it
    context_keep: float = 1.0  # and only this fraction of those points, at random (the reference's interpolation
    # training: 0.5 with context_fraction 1.0)
    time_span: float = 5.0  # a median training window spans this many model-time units
    horizon_factor: float = 1.0  # horizon = factor x the median span a training window extends past its context
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present, else CPU; or any torch device string ("cpu", "cuda:1")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), f.default)
            if f.name in _FLOATS and getattr(self, f.name) is not None:
                object.__setattr__(self, f.name, float(getattr(self, f.name)))  # JSON may send 1 for 1.0
        positive = ("latent_dim", "hidden_dim", "units", "rtol", "atol", "max_steps", "step_size", "iwae_samples",
                    "obs_std", "epochs", "batch_size", "learning_rate", "grad_clip", "time_span")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(name, f"must be > 0, got {getattr(self, name)!r}")
        for name in ("adjoint_rtol", "adjoint_atol", "window", "horizon_factor", "train_output_times", "patience",
                     "horizon", "context", "time_limit", "train_steps"):
            value = getattr(self, name)
            if value is not None and not value > 0 and not (name == "horizon_factor" and value == 0):
                raise ConfigError(name, f"must be > 0, got {value!r}")
        if self.target_grid is not None and self.target_grid < 2:
            raise ConfigError("target_grid", f"must be at least 2 (or null), got {_shown(self.target_grid)}")
        for name in ("dynamics_layers", "decoder_layers", "kl_warmup_epochs", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(name, f"must be >= 0, got {_shown(getattr(self, name))}")
        for name, (high, text) in _UPPER.items():
            value = getattr(self, name)
            if value is not None and value > high:
                raise ConfigError(name, f"must be at most {text}, got {_shown(value)}")
        for name in ("context_fraction", "context_keep"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(name, f"must be in (0, 1], got {getattr(self, name)!r}")
        for name in ("kl_anneal_rate", "lr_decay"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(name, f"must be in (0, 1], got {getattr(self, name)!r}")
        if self.frame not in ("local", "global"):
            raise ConfigError("frame", f"must be 'local' or 'global', got {self.frame!r}")
        if self.seasons is not None:
            seasons = tuple(float(p) for p in self.seasons)
            if len(seasons) > 3 or not all(0 < p <= _CENTURY_S for p in seasons):
                raise ConfigError("seasons", f"must be at most 3 positive periods in seconds, each at most 100 years, "
                                             f"got {_shown(list(seasons))}")
            object.__setattr__(self, "seasons", seasons)
        if self.encoder not in ("gru", "ode_rnn"):
            raise ConfigError("encoder", f"must be 'gru' or 'ode_rnn', got {self.encoder!r}")
        if self.lr_schedule not in ("decay", "cosine", "exponential"):
            raise ConfigError("lr_schedule", f"must be 'decay', 'cosine' or 'exponential', got {self.lr_schedule!r}")
        if self.gradient not in ("adjoint", "backprop"):
            raise ConfigError("gradient", f"must be 'adjoint' or 'backprop', got {self.gradient!r}")
        solvers = sorted([*ADAPTIVE_SOLVERS, *FIXED_SOLVERS])
        if self.solver not in solvers:
            raise ConfigError("solver", f"must be one of {solvers}, got {self.solver!r}")
        # The syntax only: whether the device exists is known where training runs (see service/training/trainer.py)
        index = _DEVICE.fullmatch(self.device)
        if index is None or (index[1] is not None and int(index[1]) > _MAX_CUDA_INDEX):
            raise ConfigError("device", f"must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N' (N from 0 to "
                                        f"{_MAX_CUDA_INDEX}), got {_shown(self.device)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a JSON object; an unknown field or a bad value raises ConfigError naming the field."""
        if not isinstance(data, dict):
            raise ConfigError("config", f"must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(str(key), f"unknown field; known fields: {', '.join(sorted(known))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that `from_dict` turns back into an equal config."""
        out = dataclasses.asdict(self)
        if self.seasons is not None:
            out["seasons"] = list(self.seasons)
        return out

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with `changes` applied (validated)."""
        return dataclasses.replace(self, **changes)


_FLOATS = ("rtol", "atol", "step_size", "adjoint_rtol", "adjoint_atol", "obs_std", "kl_anneal_rate",
           "learning_rate", "lr_decay", "grad_clip", "window", "context_fraction", "context_keep", "time_span",
           "horizon_factor", "horizon", "context", "time_limit")
_DAY_S = 86_400.0
_CENTURY_S = 100 * 365.25 * _DAY_S
# Upper bounds, far above any useful value: what a request may ask of a worker (memory, time) and of the numbers
# (a seed fits int64, durations stay exact in µs). field -> (bound, as the error message says it)
_UPPER: dict[str, tuple[float, str]] = {
    "latent_dim": (256, "256"), "hidden_dim": (1024, "1024"), "units": (1024, "1024"),
    "dynamics_layers": (16, "16"), "decoder_layers": (16, "16"), "max_steps": (100_000, "100000"),
    "iwae_samples": (64, "64"), "epochs": (100_000, "100000"), "batch_size": (4096, "4096"),
    "target_grid": (4096, "4096"),
    "train_steps": (1_000_000, "1000000"), "time_limit": (7 * _DAY_S, "604800 seconds (7 days)"),
    "horizon": (_CENTURY_S, "3155760000 seconds (100 years)"),
    "context": (_CENTURY_S, "3155760000 seconds (100 years)"),
    "window": (_CENTURY_S, "3155760000 seconds (100 years)"), "seed": (2**63 - 1, "2**63 - 1"),
}
_DEVICE = re.compile(r"auto|cpu|mps|cuda(?::(0|[1-9][0-9]?))?")
_MAX_CUDA_INDEX = 64
_OPTIONAL = ("adjoint_rtol", "adjoint_atol", "train_output_times", "target_grid", "patience", "window", "horizon",
             "context", "seasons", "time_limit")


def _finite(value: float) -> bool:
    """A finite number, and an int that float() can hold (math.isfinite(10**400) raises OverflowError)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _shown(value: object) -> str:
    """`value` for an error message: short (a JSON body may send a 4000-digit number or a long string)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_type(name: str, value: object, default: object) -> None:
    """Type of `value` must match the field's default; JSON ints are fine where a float is expected."""
    if value is None:
        if name in _OPTIONAL:
            return
        raise ConfigError(name, "must not be null")
    if name == "seasons":
        ok = isinstance(value, list | tuple) and all(
            isinstance(p, int | float) and not isinstance(p, bool) and _finite(p) for p in value)
        kind = "a list of numbers (seconds)"
    elif isinstance(default, bool) or name == "seminorm":
        ok = isinstance(value, bool)
        kind = "a boolean"
    elif isinstance(default, int) or name in ("train_output_times", "target_grid", "patience"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        kind = "an integer"
    elif name in _FLOATS:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and _finite(value)
        kind = "a finite number"
    else:
        ok = isinstance(value, str)
        kind = "a string"
    if not ok:
        raise ConfigError(name, f"must be {kind}, got {_shown(value)}")

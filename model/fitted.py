"""`FittedModel`: a trained network with everything needed to rebuild and use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

import torch

from model.calibration import Calibration
from model.config import ModelConfig
from model.data import Normaliser
from model.frame import Component
from model.network import LatentODE

if TYPE_CHECKING:
    from model.backtest import Backtest

__all__ = ["FittedModel", "resolve_device", "EpochRecord", "StepRecord"]


class EpochRecord(TypedDict):
    """One epoch of global-frame training (model/train.py): the mean training loss, the validation MSE (None
    without validation), its seconds and the dynamics evaluations of its training steps, forward and backward."""

    epoch: int
    loss: float
    val_mse: float | None
    seconds: float
    nfe: int


class StepRecord(TypedDict):
    """One validation point of local-frame training (model/local.py): the optimiser steps so far, the mean training
    loss since the last record, the validation MAE (None without cut-offs) and the seconds since training began."""

    step: int
    loss: float
    val_mae: float | None
    seconds: float


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when present, else CPU. Called only when a model is built, never at import time."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(eq=False)
class FittedModel:
    """A trained latent ODE.

    channels: the channel names it models, in order. horizon: seconds past a context's last point it may forecast.
    context_seconds: the context length (seconds) its training windows showed the encoder; give forecasts about
    this much history. history: one dict per epoch {"epoch", "loss", "val_mse" (None without validation),
    "seconds", "nfe": dynamics evaluations of the epoch's training steps, forward and backward}. normaliser:
    per-channel mean/std and the time scale (seconds per model-time unit).
    calibration: see model/calibration.py; `fit` always sets it.
    component: the local frame's classical component (model/frame.py); None for a global-frame model.
    components: a local-frame model trained on several named series (Sequence.key): each one's own component,
    chosen on its own cut-offs; a context with one of these keys is forecast with it, any other with `component`.
    backtest: a local-frame model's validation backtest beside the baselines (model/backtest.py), JSON-able.
    Forecasting never changes it.
    """

    config: ModelConfig
    channels: tuple[str, ...]
    network: LatentODE
    normaliser: Normaliser
    horizon: float
    context_seconds: float
    history: list[EpochRecord] | list[StepRecord] = field(default_factory=list)
    calibration: Calibration | None = None  # bands fitted on held-out windows; None: the model's own spread
    component: Component | None = None
    backtest: Backtest | None = None
    components: dict[str, Component] = field(default_factory=dict)

    def component_for(self, key: str | None) -> Component | None:
        """The classical component a context of series `key` is forecast with."""
        return self.component if key is None else self.components.get(key, self.component)

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def to(self, device: str | torch.device) -> FittedModel:
        """Move the network to `device` ("cpu", "cuda", "auto"); returns self."""
        self.network.to(resolve_device(device) if isinstance(device, str) else device)
        return self

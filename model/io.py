"""Serialisation: one safetensors blob, the weights as tensors and everything else as JSON in its header metadata.

Layout: tensors "network.<param>" (the state dict) and "normaliser.mean"/"normaliser.std" (float64, (C,));
header metadata {"latentcast": JSON{format, version, config, channels, time_scale, horizon, context_seconds,
history, calibration, component, backtest}}; format /1 (before the local frame) lacks the last two and its config
lacks `frame`: it reads as a global-frame model. Reading parses JSON and raw tensors only: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import safetensors.torch
import torch

from model.calibration import Calibration
from model.config import ModelConfig
from model.data import Normaliser
from model.errors import ArtifactError, ConfigError
from model.fitted import FittedModel, resolve_device
from model.frame import Component
from model.network import LatentODE

__all__ = ["to_bytes", "from_bytes", "read_header", "header_length", "ArtifactHeader", "save", "load", "FORMAT",
           "__version__"]

__version__ = "0.1.0"
FORMAT = "latentcast.latent_ode/2"  # /2 adds the local frame's component and backtest
READS = ("latentcast.latent_ode/1", FORMAT)
_KEY = "latentcast"


def to_bytes(fitted: FittedModel) -> bytes:
    """The whole model as one safetensors blob (bytes)."""
    tensors = {f"network.{k}": v.detach().cpu().contiguous() for k, v in fitted.network.state_dict().items()}
    norm = fitted.normaliser
    tensors["normaliser.mean"] = torch.as_tensor(np.asarray(norm.mean, dtype=np.float64))
    tensors["normaliser.std"] = torch.as_tensor(np.asarray(norm.std, dtype=np.float64))
    meta = {
        "format": FORMAT, "version": __version__, "config": fitted.config.to_dict(),
        "channels": list(fitted.channels), "time_scale": norm.time_scale, "horizon": fitted.horizon,
        "context_seconds": fitted.context_seconds, "history": fitted.history,
        "calibration": None if fitted.calibration is None else fitted.calibration.to_dict(),
        "component": None if fitted.component is None else fitted.component.to_dict(), "backtest": fitted.backtest,
        "components": {key: c.to_dict() for key, c in fitted.components.items()},
    }
    return safetensors.torch.save(tensors, metadata={_KEY: json.dumps(meta)})


def _header(data: bytes) -> dict[str, Any]:
    size = header_length(data) - 8
    if size > len(data) - 8:
        raise ArtifactError(f"not a safetensors blob: header length {size} exceeds {len(data) - 8} bytes")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError as exc:
        raise ArtifactError(f"not a safetensors blob: header is not JSON ({exc})") from exc
    if not isinstance(header, dict):  # a JSON object by the format; from_bytes reports what it lacks
        raise ArtifactError(f"not a safetensors blob: header is JSON {type(header).__name__}, not an object")
    return cast("dict[str, Any]", header)


def _meta(data: bytes) -> dict[str, Any]:
    """The latentcast metadata of a blob's header, its format checked."""
    header = _header(data)
    try:
        meta = json.loads(header.get("__metadata__", {})[_KEY])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError("safetensors blob carries no latentcast metadata") from exc
    if not isinstance(meta, dict) or meta.get("format") not in READS:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise ArtifactError(f"unsupported model format {found!r}; this library reads {list(READS)}")
    return cast("dict[str, Any]", meta)


@dataclass(frozen=True)
class ArtifactHeader:
    """What a blob's JSON header says about its model. horizon, context_seconds: seconds (FittedModel's fields)."""

    channels: tuple[str, ...]
    horizon: float
    context_seconds: float


def read_header(data: bytes) -> ArtifactHeader:
    """The channels, horizon and context length of a `to_bytes` blob, from its JSON header alone: `data` may be
    the blob or only its first 8 + header-length bytes; no tensor is read and torch builds nothing."""
    meta = _meta(bytes(data))
    try:
        return ArtifactHeader(channels=tuple(str(c) for c in meta["channels"]), horizon=float(meta["horizon"]),
                              context_seconds=float(meta["context_seconds"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"model blob header is incomplete: {exc}") from exc


def header_length(prefix: bytes) -> int:
    """The length in bytes of a blob's leading part that `read_header` needs (8 + its JSON header), from the
    blob's first 8 bytes."""
    # safetensors layout: 8-byte little-endian header length, then that many bytes of JSON
    if len(prefix) < 8:
        raise ArtifactError(f"not a safetensors blob: {len(prefix)} bytes")
    (size,) = struct.unpack("<Q", prefix[:8])
    return 8 + int(size)


def from_bytes(data: bytes, device: str = "cpu") -> FittedModel:
    """Rebuild a FittedModel from `to_bytes` output, on `device` ("cpu" by default; "auto" picks CUDA if present)."""
    meta = _meta(bytes(data))
    try:
        tensors = safetensors.torch.load(bytes(data))
        config = ModelConfig.from_dict({"frame": "global", **meta["config"]})  # /1 knew only the global frame
        channels = tuple(meta["channels"])
        network = LatentODE(len(channels), config)
        state = {k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")}
        network.load_state_dict(state)
        norm = Normaliser(mean=tensors["normaliser.mean"].numpy(), std=tensors["normaliser.std"].numpy(),
                          time_scale=float(meta["time_scale"]))
        calibration = None if meta.get("calibration") is None else Calibration.from_dict(meta["calibration"])
        component = None if meta.get("component") is None else Component.from_dict(meta["component"])
        components = {str(key): Component.from_dict(c) for key, c in meta.get("components", {}).items()}
        if (component is None) != (config.frame == "global"):
            raise ArtifactError(f"a {config.frame}-frame model {'without' if component is None else 'with'} a "
                                "classical component")
        if calibration is not None and calibration.quantiles.shape[-1] != len(channels):
            raise ArtifactError(f"calibration covers {calibration.quantiles.shape[-1]} channels, not {len(channels)}")
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError, safetensors.SafetensorError) as exc:
        raise ArtifactError(f"model blob is incomplete or inconsistent: {exc}") from exc
    network.eval()
    network.to(resolve_device(device))
    return FittedModel(config=config, channels=channels, network=network, normaliser=norm,
                       horizon=float(meta["horizon"]), context_seconds=float(meta["context_seconds"]),
                       history=list(meta.get("history", [])), calibration=calibration, component=component,
                       backtest=meta.get("backtest"), components=components)


def save(fitted: FittedModel, path: str | os.PathLike[str]) -> None:
    """Write `to_bytes(fitted)` to `path` atomically (a temporary file in the same folder, then os.replace)."""
    path = Path(path)
    data = to_bytes(fitted)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike[str], device: str = "cpu") -> FittedModel:
    """Read a model written by `save` (or the bytes of `to_bytes` stored in a file)."""
    return from_bytes(Path(path).read_bytes(), device=device)

"""Sequences, normalisation, training windows and padded batches.

Times given by users are seconds (float64, any origin). Inside the model, time is *model time*: seconds since the
start of a window divided by the model's time scale, computed in float64 and only then cast to float32.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from model.arrays import FloatArray, IntArray
from model.errors import InputError

__all__ = ["Sequence", "Normaliser", "Example", "EncoderBatch", "TargetBatch", "RowTargets", "encoder_batch",
           "target_batch", "row_targets", "distinct_times"]


@dataclass(frozen=True, eq=False)
class Sequence:
    """One multivariate, irregularly sampled series.

    times: (T,) float64 seconds, strictly increasing, any origin (Unix seconds are fine).
    values: (T, C) float64; NaN where a channel was not observed at that time. A (T,) array is read as C = 1.
    channels: C distinct channel names, in the column order of `values`.
    key: the series' name, or None. A model trained on several named series keeps a classical component for each
    (model/local.py); a context with one of those names is forecast with its series' component.
    """

    times: FloatArray
    values: FloatArray
    channels: tuple[str, ...]
    key: str | None = None

    def __post_init__(self) -> None:
        channels = _names(self.channels)
        times = np.asarray(self.times, dtype=np.float64)
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim == 1 and len(channels) == 1:
            values = values[:, None]
        if times.ndim != 1:
            raise InputError(f"times must be 1-D, got shape {times.shape}")
        if values.ndim != 2 or values.shape != (times.shape[0], len(channels)):
            raise InputError(
                f"values must have shape (len(times), len(channels)) = ({times.shape[0]}, {len(channels)}), "
                f"got {values.shape}"
            )
        if not all(isinstance(c, str) and c for c in channels) or len(set(channels)) != len(channels):
            raise InputError(f"channels must be distinct non-empty strings, got {channels!r}")
        if not np.all(np.isfinite(times)):
            raise InputError(f"times must be finite; first bad index {int(np.argmin(np.isfinite(times)))}")
        if times.size > 1 and not np.all(np.diff(times) > 0):
            bad = int(np.argmin(np.diff(times) > 0))
            raise InputError(
                f"times must be strictly increasing; times[{bad}] = {float(times[bad])!r} >= times[{bad + 1}] = "
                f"{float(times[bad + 1])!r}"
            )
        if np.any(np.isinf(values)):
            raise InputError("values must be finite or NaN (not observed); found inf")
        key: object = self.key  # from untyped callers, anything
        if key is not None and (not isinstance(key, str) or not key):
            raise InputError(f"key must be a non-empty string or None, got {key!r}")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "channels", channels)

    def select(self, channels: tuple[str, ...]) -> Sequence:
        """The columns named `channels`, in that order; rows where none of them is observed are dropped."""
        missing = [c for c in channels if c not in self.channels]
        if missing:
            raise InputError(f"sequence lacks channels {missing}; it has {list(self.channels)}")
        values = self.values[:, [self.channels.index(c) for c in channels]]
        keep = ~np.all(np.isnan(values), axis=1)
        return Sequence(self.times[keep], values[keep], channels, self.key)


def _names(channels: str | Iterable[object]) -> tuple[object, ...]:
    """The channel names as given (one name alone, or any iterable of them), unchecked: __post_init__ checks them."""
    return (channels,) if isinstance(channels, str) else tuple(channels)


@dataclass(frozen=True)
class Normaliser:
    """Per-channel affine normalisation (mean, std: (C,) float64) and the time scale (seconds per model-time unit)."""

    mean: FloatArray
    std: FloatArray
    time_scale: float

    @classmethod
    def fit(cls, sequences: list[Sequence], window_spans: FloatArray, time_span: float) -> Normaliser:
        values = np.concatenate([s.values for s in sequences], axis=0)
        observed = ~np.isnan(values)
        count = observed.sum(axis=0)
        mean = np.where(count > 0, np.nansum(values, axis=0) / np.maximum(count, 1), 0.0)
        var = np.where(count > 0, np.nansum((values - mean) ** 2, axis=0) / np.maximum(count, 1), 1.0)
        std = np.sqrt(var)
        std = np.where(std > 1e-8 * np.maximum(np.abs(mean), 1.0), std, 1.0)  # a constant channel: keep units
        median_span = float(np.median(window_spans))
        if not median_span > 0:
            raise InputError("training windows have zero length: each needs at least two distinct times")
        return cls(mean=mean, std=std, time_scale=median_span / time_span)

    def values(self, values: FloatArray) -> FloatArray:
        return (values - self.mean) / self.std

    def model_time(self, times: FloatArray, start: float) -> FloatArray:
        """Seconds -> model time since `start` (float64 throughout)."""
        return (np.asarray(times, dtype=np.float64) - start) / self.time_scale


@dataclass(frozen=True)
class Example:
    """One window ready for the network. Times in model time since the window start (float64).

    ctx_t (n_c,), ctx_x (n_c, C): what the encoder sees; tgt_t (n,), tgt_x (n, C): what the loss scores.
    Values are normalised, NaN = not observed.
    """

    ctx_t: FloatArray
    ctx_x: FloatArray
    tgt_t: FloatArray
    tgt_x: FloatArray


@dataclass(frozen=True)
class EncoderBatch:
    """Contexts padded one by one, newest observation first (the encoder runs backwards in time).

    steps: (B, L, 2C + 1) float: [values with 0 where missing, mask, gap to the previous (older) observation or to
    the window start]; lengths: (B,) long, each context's own number of steps; padding steps are all zero.
    """

    steps: torch.Tensor
    lengths: torch.Tensor


@dataclass(frozen=True)
class TargetBatch:
    """Union grid of target times. times: (U,) increasing, times[0] = 0; values, mask: (B, U, C)."""

    times: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor


@dataclass(frozen=True)
class RowTargets:
    """Each window's targets on its own row, for a solve on a shared grid (model/solver/dense.py reads them).

    grid: (G,) evenly spaced from 0 to the batch's last target time, the times the solver outputs; at: (B, T) each
    window's own target times (a short row padded with 0); values, mask: (B, T, C), mask 0 on padding."""

    grid: torch.Tensor
    at: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor


def _stacked(pairs: list[tuple[FloatArray, FloatArray]]) -> tuple[IntArray, IntArray, IntArray, FloatArray,
                                                                    FloatArray]:
    """(lengths (B,), row (n,) the pair each point comes from, within (n,) its index within that pair, times (n,),
    values (n, C)) of (t, x) pairs, all points one after another."""
    lengths = np.array([len(t) for t, _ in pairs])
    row = np.repeat(np.arange(len(pairs)), lengths)
    within = np.arange(row.size) - (np.cumsum(lengths) - lengths)[row]
    return lengths, row, within, np.concatenate([t for t, _ in pairs]), np.concatenate([x for _, x in pairs])


def _tensors(dtype: torch.dtype, device: torch.device, *arrays: npt.NDArray[np.floating]) -> list[torch.Tensor]:
    return [torch.as_tensor(a, dtype=dtype, device=device) for a in arrays]


def _union(times: FloatArray, dtype: torch.dtype) -> FloatArray:
    """0 and the distinct `times`, cast to `dtype` first (two float64 times that round to one float32 are one)."""
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    return np.unique(np.concatenate([np.zeros(1, np_dtype), times.astype(np_dtype)]))


def encoder_batch(contexts: list[tuple[FloatArray, FloatArray]], dtype: torch.dtype,
                  device: torch.device) -> EncoderBatch:
    """Pad each (ctx_t (n,), ctx_x (n, C)) on its own; nothing about one context depends on another.

    All contexts are handled together (one concatenation and one scatter, not a loop over them): a batch is built for
    every training step, and the per-context loop took a millisecond of each ~45 ms step."""
    lengths, row, within, times, values = _stacked(contexts)
    gaps = np.diff(times, prepend=0.0)
    firsts = np.flatnonzero(within == 0)
    gaps[firsts] = times[firsts]  # a context's first gap: from the window start
    observed = ~np.isnan(values)
    steps = np.zeros((len(contexts), int(lengths.max(initial=0)), 2 * values.shape[1] + 1))
    steps[row, lengths[row] - 1 - within] = np.concatenate(  # newest observation first
        [np.where(observed, values, 0.0), observed, gaps[:, None]], axis=1)
    return EncoderBatch(torch.as_tensor(steps, dtype=dtype, device=device),
                        torch.as_tensor(lengths, dtype=torch.long, device=device))


def target_batch(targets: list[tuple[FloatArray, FloatArray]], dtype: torch.dtype,
                 device: torch.device) -> TargetBatch:
    """Put every (tgt_t (n,), tgt_x (n, C)) on the union of their times (cast to `dtype` first so it stays unique);
    all targets together, as `encoder_batch`."""
    _, row, _, times, x = _stacked(targets)
    grid = _union(times, dtype)
    where = np.searchsorted(grid, times.astype(grid.dtype))
    values = np.zeros((len(targets), grid.size, x.shape[1]))
    mask = np.zeros_like(values)
    observed = ~np.isnan(x)
    values[row, where] = np.where(observed, x, 0.0)
    mask[row, where] = observed
    return TargetBatch(*_tensors(dtype, device, grid, values, mask))


def distinct_times(targets: list[tuple[FloatArray, FloatArray]], dtype: torch.dtype) -> int:
    """How many distinct times (after the cast to `dtype`, and 0) a target_batch of `targets` would solve at."""
    return int(_union(np.concatenate([t for t, _ in targets]), dtype).size)


def row_targets(targets: list[tuple[FloatArray, FloatArray]], dtype: torch.dtype, device: torch.device,
                points: int) -> RowTargets:
    """Each (tgt_t (n,), tgt_x (n, C)) on a row of its own, and a grid of `points` (>= 2) times spanning them all.

    Where windows have their own times (irregular data), the union of a batch's target times grows with the batch
    (50 windows of 100 points: ~5,000 times) and so does the solve; on a grid the solve costs the same whatever the
    batch, and every target of every window is scored."""
    if points < 2:
        raise ValueError(f"a grid needs at least 2 points, got {points}")
    lengths, row, within, times, x = _stacked(targets)
    width = int(lengths.max(initial=1))
    at = np.zeros((len(targets), width))
    values = np.zeros((len(targets), width, x.shape[1]))
    mask = np.zeros_like(values)
    observed = ~np.isnan(x)
    at[row, within] = times
    values[row, within] = np.where(observed, x, 0.0)
    mask[row, within] = observed
    last = float(times.max(initial=0.0))
    grid = np.linspace(0.0, last if last > 0 else 1.0, points)
    return RowTargets(*_tensors(dtype, device, grid, at, values, mask))

"""`forecast` and `forecast_batch`: predictive mean, std and quantiles at any times, from a context.

Each request's z0 samples come from its own seeded generator, its context is padded on its own, and its solve
uses per-sample step control, so an answer never depends on what else shares the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from model.arrays import FloatArray, IntArray
from model.data import Sequence, encoder_batch
from model.errors import InputError, OutOfRangeError
from model.fitted import FittedModel
from model.frame import SCALE_FLOOR, Component, WindowFrame, frame_of
from model.network import inference_tanh
from model.solver import forecast_solve

__all__ = ["Forecast", "forecast", "forecast_batch", "Request"]

# one forecast request: (context, at) or (context, at, start), as forecast_batch takes them (`at`: seconds, any
# array-like; start: seconds or None)
Request = tuple[Sequence, object] | tuple[Sequence, object, float | None]


@dataclass(frozen=True, eq=False)
class Forecast:
    """Predictive distribution at `times` (Q,) float64 seconds, in the order they were asked for.

    mean, std: (Q, C); quantiles: (K, Q, C) for `quantile_levels` (K,), in original units; channels: C names.
    nfe: solver function evaluations of the batched solve this forecast was part of.
    """

    times: FloatArray
    mean: FloatArray
    std: FloatArray
    quantiles: FloatArray
    quantile_levels: FloatArray
    channels: tuple[str, ...]
    nfe: int = 0


@dataclass(frozen=True)
class _Request:
    """One window's worth of a request: the encoder's context and the distinct query times it answers."""

    ctx_t: FloatArray  # (n,) model time
    ctx_x: FloatArray  # (n, C) normalised (global frame) or local (local frame), NaN = missing
    query: FloatArray  # (U,) sorted distinct model times
    inverse: IntArray  # (Q,) index into query of each asked time this part answers
    times: FloatArray  # (U,) seconds of each query time
    positions: IntArray | None = None  # (Q,) where those times stand in the request's `at`; None = all, in order
    frame: WindowFrame | None = None  # local frame: the window's classical component and scale


UPPER_ULPS = 8  # _check_times: the last time answered may exceed last + horizon by this many units in the last place


def _check_times(fitted: FittedModel, ctx: Sequence, at: object, start: float | None,
                 k: int) -> tuple[FloatArray, float]:
    """The asked times (Q,) s, refused when outside [lower, last + horizon]; and lower."""
    times = np.asarray(at, dtype=np.float64)
    if times.ndim == 0:
        times = times[None]
    if times.ndim != 1 or times.size == 0:
        raise InputError(f"request {k}: `at` must be a non-empty 1-D array of seconds, got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise InputError(f"request {k}: `at` must be finite")
    lower, upper = float(ctx.times[0]), float(ctx.times[-1] + fitted.horizon)
    # a few units in the last place to spare: a caller that adds the horizon in other units (the service: integer
    # microseconds, then seconds) may land one rounding past this sum, and that time is still the horizon's end
    upper += UPPER_ULPS * float(np.spacing(abs(upper)))  # np.spacing of a negative number is negative
    if start is not None:
        if not np.isfinite(start) or start > lower:
            raise InputError(f"request {k}: start {start!r} must be finite and <= the context's first time {lower!r}")
        lower = float(start)
    if times.min() < lower or times.max() > upper:
        bad = float(times.min() if times.min() < lower else times.max())
        raise OutOfRangeError(
            f"request {k}: time {bad!r} is outside [{lower!r}, {upper!r}]: forecasts reach from the context's first "
            f"observation to {fitted.horizon:g} s (the model's horizon) past its last", lower, upper)
    return times, lower


def _prepare(fitted: FittedModel, context: Sequence, at: object, start: float | None, k: int) -> list[_Request]:
    if not isinstance(context, Sequence):
        raise InputError(f"request {k}: context must be a model.Sequence, got {type(context).__name__}")
    ctx = context.select(fitted.channels)
    if ctx.times.size == 0:
        raise InputError(f"request {k}: the context has no observation of channels {list(fitted.channels)}")
    times, lower = _check_times(fitted, ctx, at, start, k)
    component = fitted.component_for(ctx.key)
    if component is not None:
        return _local_parts(fitted, component, ctx, times)
    norm = fitted.normaliser
    query, inverse = np.unique(norm.model_time(times, lower), return_inverse=True)
    return [_Request(norm.model_time(ctx.times, lower), norm.values(ctx.values), query, inverse,
                     np.unique(times))]


def _local_parts(fitted: FittedModel, component: Component, ctx: Sequence, times: FloatArray) -> list[_Request]:
    """Local frame: one window per stretch of the asked times. Times after the context's last observation (and
    those within one context length before it) go with the window ending there; earlier times go with windows
    ending about half a context after them, so that each is surrounded by the points it is interpolated from."""
    span, last = component.encoder, float(ctx.times[-1])
    order = np.argsort(times, kind="stable")
    parts, i = [], 0
    while i < order.size:
        first = float(times[order[i]])
        if first >= last - span:
            end_index = ctx.times.size - 1
        else:
            end_index = max(0, int(np.searchsorted(ctx.times, first + span / 2, side="right")) - 1)
        end = float(ctx.times[end_index])
        reach = end + fitted.horizon if end_index == ctx.times.size - 1 else end
        j = int(np.searchsorted(times[order], reach, side="right"))
        j = max(j, i + 1)  # a time past `end` here lies beyond the last point: the window ending there covers it
        parts.append(_local_part(fitted, component, ctx, end_index, order[i:j], times))
        i = j
    return parts


def _local_part(fitted: FittedModel, component: Component, ctx: Sequence, end_index: int, positions: IntArray,
                times: FloatArray) -> _Request:
    """The window whose context ends at ctx.times[end_index], answering times[positions]: the component is fitted
    on its last component.context seconds, the encoder reads its last component.encoder seconds."""
    frame = frame_of(component, ctx.times[:end_index + 1], ctx.values[:end_index + 1],
                     SCALE_FLOOR * fitted.normaliser.std)
    origin = frame.end - component.encoder
    begin = int(np.searchsorted(ctx.times, origin, side="left"))
    ctx_t, ctx_x = ctx.times[begin:end_index + 1], ctx.values[begin:end_index + 1]
    asked = times[positions]
    unique, inverse = np.unique(asked, return_inverse=True)
    norm = fitted.normaliser
    return _Request(norm.model_time(ctx_t, origin), frame.to_local(ctx_t, ctx_x), norm.model_time(unique, origin),
                    inverse, unique, positions, frame)


def forecast_batch(fitted: FittedModel, requests: Iterable[Request], *, samples: int = 100,
                   quantiles: Iterable[float] = (0.05, 0.5, 0.95),
                   seeds: Iterable[int | None] | None = None, part: str = "model") -> list[Forecast]:
    """One Forecast per (context, at) or (context, at, start) request, all solved together; each equals its own
    `forecast` call.

    context: a Sequence holding at least the model's channels (others are ignored). at: seconds, same origin as
    context.times, unsorted and repeated allowed, within [context.times[0], context.times[-1] + horizon].
    seeds: one per request (None = fresh randomness).
    part: "model" (the default), or "classical": a local-frame model's classical component alone (no bands).
    """
    requests = list(requests)
    if not requests:
        return []
    if not _is_count(samples):
        raise InputError(f"samples must be a positive integer, got {samples!r}")
    levels = np.asarray(list(quantiles), dtype=np.float64)
    if levels.ndim != 1 or not np.all((levels > 0) & (levels < 1)):
        raise InputError(f"quantiles must lie strictly between 0 and 1, got {levels.tolist()}")
    seeds = [None] * len(requests) if seeds is None else list(seeds)
    if len(seeds) != len(requests):
        raise InputError(f"seeds: {len(seeds)} given for {len(requests)} requests")
    for k, request in enumerate(requests):
        if not _is_request(request):
            raise InputError(f"request {k}: expected (context, at) or (context, at, start), got {request!r:.80}")
    if part not in ("model", "classical"):
        raise InputError(f"part must be 'model' or 'classical', got {part!r}")
    if part == "classical" and fitted.component is None:
        raise InputError("part='classical': this model has no classical component (it was trained in the global "
                         "frame)")
    prepared = [_prepare(fitted, r[0], r[1], r[2] if len(r) == 3 else None, k) for k, r in enumerate(requests)]
    parts = [p for per_request in prepared for p in per_request]
    part_seeds = [None if seed is None else int(seed) + i
                  for per_request, seed in zip(prepared, seeds, strict=True) for i in range(len(per_request))]
    levels = np.sort(levels)
    if part == "classical":
        summaries = [_classical(p, levels) for p in parts]
        nfe = 0
    else:
        decoded, nfe = _sample(fitted, parts, samples, part_seeds)
        obs_std = observation_std(fitted)
        table = None if fitted.calibration is None else fitted.calibration.table(levels)  # the same for every part
        summaries = [_summarise(fitted, p, d, levels, n, obs_std, table) for p, (d, n) in zip(parts, decoded,
                                                                                             strict=True)]
    out, used = [], 0
    for request, per_request in zip(requests, prepared, strict=True):
        times = np.atleast_1d(np.asarray(request[1], dtype=np.float64))
        mean = np.empty((times.size, len(fitted.channels)))
        std, quantiles = np.empty_like(mean), np.empty((levels.size, *mean.shape))
        for p, (m, sd, q) in zip(per_request, summaries[used:used + len(per_request)], strict=True):
            where = slice(None) if p.positions is None else p.positions
            mean[where], std[where], quantiles[:, where] = m[p.inverse], sd[p.inverse], q[:, p.inverse]
        used += len(per_request)
        out.append(Forecast(times=times, mean=mean, std=std, quantiles=quantiles, quantile_levels=levels,
                            channels=fitted.channels, nfe=nfe))
    return out


def _is_count(value: object) -> bool:
    """A positive int (not a bool): the check for callers that pass what JSON gave them."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_request(value: object) -> bool:
    """(context, at) or (context, at, start), as a tuple or a list; the parts are checked by `_prepare`."""
    return isinstance(value, tuple | list) and len(value) in (2, 3)


def _classical(r: _Request, levels: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The classical component alone at a part's distinct times: mean, std 0, every quantile the mean."""
    assert r.frame is not None  # part="classical" is refused for a model without a component
    mean = _bounded(r.frame, r.frame.classical(r.times))
    return mean, np.zeros_like(mean), np.repeat(mean[None], levels.size, axis=0)


def _bounded(frame: WindowFrame, values: FloatArray) -> FloatArray:
    """Values (..., C) in original units with each channel the component keeps at or above zero
    (Component.nonnegative) clipped there: a count's band does not reach below what it can be."""
    bounded = np.asarray(frame.component.nonnegative, dtype=bool)
    if not bounded.any():
        return values
    return np.where(bounded, np.maximum(values, 0.0), values)


def _sample(fitted: FittedModel, prepared: list[_Request], samples: int,
            seeds: list[int | None]) -> tuple[list[tuple[FloatArray, FloatArray | None]], int]:
    """Per request, (decoded (S, U, C), observation noise (S, U, C) standard normal, or None for a calibrated
    model) at its distinct query times, normalised units, all solved together; and the solve's function
    evaluations. Where the network's output has no weight in any part (network_unused), decoded is zeros (1, U, C)
    and nothing is solved: mixed() would discard whatever it decoded (the noise is drawn all the same)."""
    network, config = fitted.network, fitted.config
    device = fitted.device
    dtype = next(network.parameters()).dtype
    channels = len(fitted.channels)
    eps = []
    noise = []
    for r, seed in zip(prepared, seeds, strict=True):
        gen = torch.Generator(device="cpu")
        gen.manual_seed(int(seed) if seed is not None else int(np.random.default_rng().integers(2**62)))
        eps.append(torch.randn(samples, config.latent_dim, generator=gen, dtype=torch.float64))
        if fitted.calibration is None:  # calibrated bands need no noise draws
            noise.append(torch.randn(samples, r.query.size, channels, generator=gen, dtype=torch.float64))
    if network_unused(fitted, prepared):
        return [(np.zeros((1, r.query.size, channels)), noise[i].numpy() if noise else None)
                for i, r in enumerate(prepared)], 0
    with torch.no_grad(), inference_tanh():
        mean, std = network.posterior(encoder_batch([(r.ctx_t, r.ctx_x) for r in prepared], dtype, device))
        longest = max(r.query.size for r in prepared)
        eps_t = torch.stack(eps).to(device=device, dtype=dtype)  # (R, S, D)
        z0 = (mean[:, None] + std[:, None] * eps_t).reshape(-1, config.latent_dim)
        # pad each request's times by repeating its last one: the solver's end point (and answer) stays its own
        t_eval = np.stack([np.pad(r.query, (0, longest - r.query.size), mode="edge") for r in prepared])
        # each request's samples share a step size: an answer depends on its own request only
        zt, nfe = forecast_solve(network.dynamics, z0, torch.as_tensor(t_eval, dtype=dtype, device=device), config,
                                 group=samples)  # (R*S, U, D)
        decoded = network.decoder(zt).reshape(len(prepared), samples, longest, channels).double().cpu()
    return [(decoded[i, :, : r.query.size].numpy(), noise[i].numpy() if noise else None)
            for i, r in enumerate(prepared)], nfe


def network_unused(fitted: FittedModel, prepared: list[_Request]) -> bool:
    """Whether no part's answer reads the network: every part is a local-frame window whose component's blend is 0
    on every channel (mixed() then weighs the network's samples 0 at every time; the band's width comes from the
    calibration or, uncalibrated, from the observation noise, never from the samples' spread). So a model whose
    network got no weight, or was never trained (model/local.py), forecasts and calibrates without solving its
    ODE."""
    channels = len(fitted.channels)
    return all(r.frame is not None and not r.frame.component.weights(channels).any() for r in prepared)


def mixed(fitted: FittedModel, r: _Request, decoded: FloatArray) -> FloatArray:
    """Local frame: the residual samples (S, U, C) the model answers with at a part's times: inside the context the
    classical residual (its neighbours' residuals interpolated), after it the network's samples and the classical
    residual mixed by the component's blend."""
    assert r.frame is not None  # a local-frame model's part
    blend = r.frame.component.weights(decoded.shape[-1])[None, :]  # (1, C): the blend of the part's component
    weight = np.where((r.times <= r.frame.end)[:, None], 0.0, blend)  # (U, C)
    return weight * decoded + (1 - weight) * r.frame.residual(r.times)


def spread(decoded: FloatArray, obs_std: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean (U, C) and spread (U, C) of decoded samples (S, U, C), normalised: the spread is the samples' std with
    the observation noise obs_std (C,) added in quadrature, so it is never 0."""
    return decoded.mean(axis=0), np.sqrt(decoded.var(axis=0) + obs_std**2)


def local_spread(decoded: FloatArray, obs_std: FloatArray, unit: FloatArray) -> tuple[FloatArray, FloatArray]:
    """`spread` for the local frame's mixed residual samples (S, U, C): the mean, and obs_std (C,) times the
    window's band unit (C,, WindowFrame.unit) at every time.

    In the local frame a residual is in units of its window's own scale; the band unit is the spread of what the
    component leaves in the context in those units, and the calibrated quantiles per quarter of the horizon (from
    the backtest's errors) give the band its width and its growth with the horizon. The network's sample spread is
    left out: it says how unsure the encoder is about a residual the blend may weigh little, and standardising by
    it let the band narrow towards the horizon where the errors grow."""
    return decoded.mean(axis=0), np.broadcast_to(obs_std * unit, decoded.shape[1:]).copy()


def observation_std(fitted: FittedModel) -> FloatArray:
    """(C,) the model's observation noise std per channel, normalised units."""
    with torch.no_grad():
        return fitted.network.observation_std().double().cpu().numpy()


def _summarise(fitted: FittedModel, r: _Request, decoded: FloatArray, levels: FloatArray, noise: FloatArray | None,
               obs_std: FloatArray, table: FloatArray | None) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One part's mean (U, C), std (U, C) and quantiles (K, U, C) at its distinct times, original units; `table` is
    fitted.calibration.table(levels), None for an uncalibrated model."""
    calibration = fitted.calibration
    if r.frame is not None:
        decoded = mixed(fitted, r, decoded)
    if calibration is None:
        # predictive samples: decoded mean plus the observation noise the model was trained with
        assert noise is not None  # _sample draws noise for every part of an uncalibrated model
        draws = decoded + obs_std * noise
        mean, std, quantiles = draws.mean(axis=0), draws.std(axis=0), np.quantile(draws, levels, axis=0)
    else:
        assert table is not None  # the caller's calibration.table(levels)
        mean, scale = spread(decoded, obs_std) if r.frame is None else local_spread(decoded, obs_std, r.frame.unit)
        band = calibration.bands(r.query - r.ctx_t[-1])  # (U,)
        quantiles = mean[None] + scale[None] * table[band].transpose(2, 0, 1)  # (K, U, C)
        std = scale * calibration.scale[band]
    if r.frame is not None:
        original = r.frame.to_original(r.times, mean)
        return (_bounded(r.frame, original), r.frame.spread_to_original(std, original),
                _bounded(r.frame, r.frame.to_original(r.times, quantiles)))
    norm = fitted.normaliser
    return mean * norm.std + norm.mean, std * norm.std, quantiles * norm.std + norm.mean


def forecast(fitted: FittedModel, context: Sequence, at: object, *, samples: int = 100,
             quantiles: Iterable[float] = (0.05, 0.5, 0.95), seed: int | None = None,
             start: float | None = None, part: str = "model") -> Forecast:
    """Predictive mean (Q, C), std (Q, C) and quantiles (K, Q, C) at times `at` (seconds), given `context`.

    See forecast_batch for the rules on `context` and `at`; raises OutOfRangeError (with .lower/.upper) for a time
    outside [context.times[0], context.times[-1] + fitted.horizon], InputError for malformed input.
    start (seconds, <= context.times[0]): where the window the context belongs to begins, when its first points
    were not observed (as in training windows whose context was subsampled); `at` may then reach back to it.
    Default: the context's first time.
    """
    request = (context, at) if start is None else (context, at, start)
    return forecast_batch(fitted, [request], samples=samples, quantiles=quantiles, seeds=[seed], part=part)[0]

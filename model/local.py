"""Training in the local frame (model/frame.py): sizes chosen from the data, windows at random start times, a budget
in optimiser steps, early stopping on validation cut-offs in the newest part of each series.

    horizon, seasons, context ─► validation cut-offs ─► the classical component chosen by backtest on them
    (and on more cut-offs over the whole history: the component reads only the past of each), and whether between
    observations it follows its own curve or the observations' line (on held-out points); on several named series
    also each one's own, chosen the same way on its own cut-offs ─► a pool of windows
    drawn at random end times before the cut-offs ─► `train_steps` Adamax steps on random batches of the pool
    (scored on the cut-offs every so often; the best weights kept; stopped once PATIENCE scores in a row find
    none better) ─► the blend (how much of the network's output to add, per channel) chosen on the cut-offs ─►
    bands calibrated on the cut-offs and the history's ─► the backtest beside the baselines (model/backtest.py).

Where no channel's cut-offs hold enough values to weigh the network (backtest.weighable: a short series), the blend
would be 0 whatever the network learnt, so the network is not trained at all (`"network_trained": false`): the
forecasts are the classical part's, as they would be after training, in seconds instead of minutes.

Every size is in seconds. Where a series is too short to keep its newest part apart, the cut-offs lie inside the
training data and the backtest says so (`"overlap": true`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from model.arrays import FloatArray
from model.backtest import (
    Cutoff,
    backtest,
    calibration_from,
    choose_blend,
    choose_component,
    choose_inside,
    cutoffs_of,
    far_cutoffs,
    history_cutoffs,
    unit_prior,
    weighable,
)
from model.config import ModelConfig
from model.data import Example, Normaliser, Sequence
from model.errors import NonFiniteLossError, TrainingCancelled
from model.fitted import FittedModel, StepRecord, resolve_device
from model.frame import SCALE_FLOOR, Component, frame_of
from model.network import LatentODE
from model.seasons import detect_seasons, fine_gap, median_gap

__all__ = ["fit_local", "choice_setup", "ChoiceSetup", "choose_sizes", "own_components", "own_sizes",
           "positive_channels", "nonnegative_channels", "OWN_COMPONENTS"]

Progress = Callable[[int, int, float, "float | None"], None]

HORIZON_FRACTION = 0.2  # no horizon given: a fifth of the median series span ...
HORIZON_GAPS = 64  # ... at most this many median gaps
CONTEXT_GAPS = 32  # the component's context holds at least this many median gaps ...
CONTEXT_SEASONS = 2.5  # ... and this many of the longest season, when the series are long enough
ENCODER_POINTS = 96  # the encoder reads about this many of the newest points of the context
POOL = 2048  # windows drawn once; batches are drawn from them at random
EVALUATIONS = 30  # validation scores over a run (early stopping picks the best)
PATIENCE = 10  # evaluations without a better score before training stops (config.patience None: this)
MAX_HISTORY = 240  # cut-offs over the whole history added to the validation ones (component choice, bands)
OWN_COMPONENTS = 50  # a model of at most this many named series chooses a component per series (~2 s each)


@dataclass(frozen=True)
class Sizes:
    """horizon, context, encoder: seconds; seasons: periods in seconds; gap: the median gap (s); fine_gap: the data's
    fine gap (s, seasons.fine_gap); room: the longest history (s) a window may hold before its horizon; context_given:
    whether the config fixed the context; log: per channel, whether the component fits it on the log scale
    (Component.log)."""

    horizon: float
    context: float
    encoder: float
    seasons: tuple[float, ...]
    gap: float
    fine_gap: float
    room: float = math.inf
    context_given: bool = False
    log: tuple[bool, ...] = ()


def choose_sizes(sequences: list[Sequence], config: ModelConfig) -> Sizes:
    """Horizon, context, encoder span and seasons: the config's where given, else chosen from the data."""
    gap = median_gap(sequences)
    spans = np.array([s.times[-1] - s.times[0] for s in sequences])
    longest = float(spans.max())
    horizon = config.horizon or float(min(HORIZON_FRACTION * np.median(spans), HORIZON_GAPS * gap))
    room = max(longest - horizon, 4 * gap)  # history a window may hold before its horizon
    if config.seasons is not None:
        seasons = tuple(config.seasons)
    else:
        seasons = detect_seasons(sequences, longest=room / CONTEXT_SEASONS)
    if config.context is not None:
        context = config.context
    else:
        context = max(horizon, CONTEXT_SEASONS * max(seasons, default=0.0), CONTEXT_GAPS * gap)
        context = min(context, max(room / 2, 4 * gap))
    seasons = tuple(p for p in seasons if p <= context / 1.5)  # a season needs most of two cycles to be fitted
    encoder = min(context, ENCODER_POINTS * gap)
    return Sizes(horizon=float(horizon), context=float(context), encoder=float(encoder), seasons=seasons, gap=gap,
                 fine_gap=fine_gap(sequences), room=float(room), context_given=config.context is not None,
                 log=positive_channels(sequences) if config.log_scale else ())


def positive_channels(sequences: list[Sequence]) -> tuple[bool, ...]:
    """Per channel, whether every observed value of it in `sequences` is positive: such a channel is fitted on the
    log scale, where a level, a trend and seasons are multiplicative (a growth a rate, a season a share of the
    level) and a forecast never falls below zero; a channel that is ever zero or negative stays as it is."""
    return tuple(all(bool(np.all(v > 0)) for v in per) for per in _observed(sequences))


def nonnegative_channels(sequences: list[Sequence]) -> tuple[bool, ...]:
    """Per channel, whether no observed value of it in `sequences` is negative and some are exactly zero: a count
    or an amount, bounded below by zero, whose forecasts and bands the model keeps at or above it
    (Component.nonnegative). A channel that never reaches zero may be a level that only happens to be positive in
    the history (a temperature in a warm season), so it is left unbounded."""
    return tuple(all(bool(np.all(v >= 0)) for v in per) and any(bool(np.any(v == 0)) for v in per)
                 for per in _observed(sequences))


def _observed(sequences: list[Sequence]) -> list[list[FloatArray]]:
    """Per channel, per sequence, the observed (non-NaN) values of that channel."""
    return [[v[~np.isnan(v)] for v in (s.values[:, c] for s in sequences)]
            for c in range(sequences[0].values.shape[1])]


@dataclass
class ChoiceSetup:
    """What fit_local chooses the component on: the sizes, the normaliser, the newest cut-offs (with per sequence
    the last time training may use, and whether any cut-off overlaps training data), those over the history (at
    most MAX_HISTORY), and the random generator, drawn from as far as these."""

    sizes: Sizes
    norm: Normaliser
    cutoffs: list[Cutoff]
    limits: list[float]
    overlap: bool
    history: list[Cutoff]
    rng: np.random.Generator


def choice_setup(sequences: list[Sequence], config: ModelConfig) -> ChoiceSetup:
    """fit_local's first steps, before anything is chosen (also what benchmarks/component_bench.py replays)."""
    sizes = choose_sizes(sequences, config)
    norm = Normaliser.fit(sequences, np.array([sizes.encoder + sizes.horizon]), config.time_span)
    rng = np.random.default_rng(config.seed)
    cutoffs, limits, overlap = cutoffs_of(sequences, sizes, rng)
    past = history_cutoffs(sequences, sizes)
    if len(past) > MAX_HISTORY:
        past = [past[i] for i in sorted(rng.choice(len(past), MAX_HISTORY, replace=False))]
    return ChoiceSetup(sizes, norm, cutoffs, limits, overlap, past, rng)


def fit_local(sequences: list[Sequence], config: ModelConfig, progress: Progress | None,
              should_stop: Callable[[], bool] | None) -> FittedModel:
    """`model.fit` for config.frame == "local"; sequences are checked already (same channels, >= 2 times)."""
    started = time.perf_counter()
    channels = sequences[0].channels
    device = resolve_device(config.device)
    setup = choice_setup(sequences, config)
    sizes, norm, rng, cutoffs, limits, overlap, past = (setup.sizes, setup.norm, setup.rng, setup.cutoffs,
                                                        setup.limits, setup.overlap, setup.history)
    floor = SCALE_FLOOR * norm.std
    shared = choose_component(sequences, cutoffs, past, sizes, norm.std)
    component = choose_inside(sequences, shared, norm.std)
    own = own_components(sequences, shared, sizes, norm.std, config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = LatentODE(len(channels), config).to(device)
    fitted = FittedModel(config=config, channels=channels, network=network, normaliser=norm, horizon=sizes.horizon,
                         context_seconds=max(c.reach for c in (component, *own.values())), component=component,
                         components=own)
    trained = bool(weighable(sequences, cutoffs).any())
    history: list[StepRecord] = []
    hit_limit = stopped_early = False
    if trained:  # else choose_blend gives the network no weight on any channel: training would change no forecast
        pool = _pool(sequences, limits, fitted, sizes, floor, rng)
        history, hit_limit, stopped_early = _train(fitted, pool, sequences, cutoffs, rng, progress, should_stop,
                                                   started)
    fitted.history = history
    blend, prior = choose_blend(fitted, sequences, cutoffs), unit_prior(fitted, sequences, cutoffs + past)
    bounds = nonnegative_channels(sequences)
    fitted.component = dataclasses.replace(component, blend=blend, unit_prior=prior, nonnegative=bounds)
    fitted.components = {key: dataclasses.replace(c, blend=blend, unit_prior=prior, nonnegative=bounds)
                         for key, c in own.items()}
    far = far_cutoffs(sequences, sizes, [cutoffs, past])  # bursts further apart than the horizon: the next burst
    fitted.calibration = calibration_from(fitted, sequences, cutoffs + past, far)
    fitted.backtest = backtest(fitted, sequences, cutoffs, sizes)
    fitted.backtest["overlap"], fitted.backtest["hit_time_limit"] = overlap, hit_limit
    fitted.backtest["network_trained"], fitted.backtest["stopped_early"] = trained, stopped_early
    fitted.backtest["calibrated_until_s"] = fitted.calibration.checked_until(fitted.horizon)
    fitted.backtest["steps"] = history[-1]["step"] if history else 0
    fitted.backtest["seconds"] = round(time.perf_counter() - started, 3)
    return fitted


def own_components(sequences: list[Sequence], shared: Component, sizes: Sizes, std: FloatArray,
                   config: ModelConfig) -> dict[str, Component]:
    """For two to OWN_COMPONENTS sequences, each named one's (Sequence.key) own classical component: chosen among
    the candidates of its own sizes (own_sizes: its own seasons and context) and the shared one (`shared`, as
    choose_component gave it), on that series' own validation and history cut-offs alone, and taken only where it
    clearly beats the shared one there (OWN_MARGIN); {} otherwise.

    Series that share dynamics need not share a level, a trend or seasons: with one component for a whole panel
    (its choice pooled over every series' cut-offs), a series whose trend turns gets the panel's trend, and a
    season found on the panel as a whole is offered to every series whether it shows it or not. The network is
    still one, trained on every series' residuals in its own frame. Past OWN_COMPONENTS series the choice would
    cost minutes (each series tries every candidate on its cut-offs), and every series takes the shared one."""
    if not 2 <= len(sequences) <= OWN_COMPONENTS:
        return {}
    out = {}
    for s in sequences:
        if s.key is not None:
            mine = own_sizes(s, sizes, config)
            cutoffs, _, _ = cutoffs_of([s], mine, np.random.default_rng(config.seed))  # fewer than MAX_CUTOFFS
            chosen = choose_component([s], cutoffs, history_cutoffs([s], mine), mine, std, shared)
            out[s.key] = choose_inside([s], chosen, std)
    return out


def own_sizes(sequence: Sequence, sizes: Sizes, config: ModelConfig) -> Sizes:
    """One series' sizes inside a model of several (`sizes`): its own seasons and context, as a model of that
    series alone would choose them (or the config's, where given), with the model's horizon and encoder span,
    which the one network shares."""
    mine = choose_sizes([sequence], dataclasses.replace(config, horizon=sizes.horizon))
    return dataclasses.replace(mine, encoder=sizes.encoder)


def _pool(sequences: list[Sequence], limits: list[float], fitted: FittedModel, sizes: Sizes, floor: FloatArray,
          rng: np.random.Generator) -> list[Example]:
    """POOL training windows: a sequence chosen in proportion to its usable span, an end time uniform in it; each
    window's context is the points up to its end, its targets every point from encoder span before to horizon after
    it (none past the sequence's limit), all in the window's own frame (the component a forecast of that series
    uses: fitted.component_for) and model time."""
    usable = np.array([max(limit - s.times[0] - sizes.encoder / 2, 0.0) for s, limit in zip(sequences, limits,
                                                                                            strict=True)])
    weights = usable / usable.sum() if usable.sum() > 0 else np.full(len(sequences), 1 / len(sequences))
    examples = []
    for k in rng.choice(len(sequences), size=POOL, p=weights):
        s, limit = sequences[k], limits[k]
        end_time = rng.uniform(min(s.times[0] + sizes.encoder / 2, limit), limit)
        end = int(np.searchsorted(s.times, end_time, side="right")) - 1
        if end < 1:
            continue
        component = fitted.component_for(s.key)
        assert component is not None  # fit_local's model has one
        frame = frame_of(component, s.times[:end + 1], s.values[:end + 1], floor)
        origin = frame.end - sizes.encoder
        inside = (s.times >= origin) & (s.times <= min(frame.end + sizes.horizon, limit))
        t, x = s.times[inside], frame.to_local(s.times[inside], s.values[inside])
        model_t = fitted.normaliser.model_time(t, origin)
        seen = t <= frame.end
        if seen.sum() < 1 or t.size < 2:
            continue
        examples.append(Example(ctx_t=model_t[seen], ctx_x=x[seen], tgt_t=model_t, tgt_x=x))
    return examples


def _train(fitted: FittedModel, pool: list[Example], sequences: list[Sequence], cutoffs: list[Cutoff],
           rng: np.random.Generator, progress: Progress | None, should_stop: Callable[[], bool] | None,
           started: float) -> tuple[list[StepRecord], bool, bool]:
    """Adamax on random batches of `pool` for config.train_steps steps (or until config.time_limit), scored on
    `cutoffs` EVALUATIONS times; the weights with the lowest validation MAE are kept, and training stops once
    `patience` scores in a row (config.patience, else PATIENCE) found none lower. Returns (history, whether the
    time limit stopped it, whether the patience did).

    Stopping early changes nothing that was kept: the steps up to the stop are those of the whole run (the
    learning rate's schedule is set by train_steps), so the kept weights are the whole run's wherever its best
    score came before the stop. On a short series the validation error is often lowest at the first score and
    rises from there while the training loss falls (the network learns the training windows' noise): the rest
    of the budget would only have been spent."""
    from model.backtest import validation_mae
    from model.train import Adamax, batch_loss, lr_factor

    config, network = fitted.config, fitted.network
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    optimiser = Adamax(network.parameters())
    total = config.train_steps
    every = max(1, math.ceil(total / EVALUATIONS))
    warmup = 0.1 * total  # the KL weight: 0, then rising as the reference's does per epoch (an epoch ~ `every`)
    patience = config.patience or PATIENCE
    history: list[StepRecord] = []
    best, best_state, losses, stale = math.inf, None, [], 0
    hit_limit = stopped = False
    for step in range(total):
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"training cancelled at step {step + 1}", step + 1)
        batch = [pool[i] for i in rng.integers(len(pool), size=config.batch_size)]
        kl = 0.0 if step < warmup else 1.0 - config.kl_anneal_rate ** ((step - warmup) / every)
        network.train()
        loss, _ = batch_loss(network, batch, config, kl, generator, rng)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"loss became {float(loss.detach())} at step {step + 1}; try a lower "
                                     "learning_rate or a larger obs_std", step + 1)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), config.grad_clip)
        optimiser.step(config.learning_rate * lr_factor(step, total, config))
        losses.append(float(loss.detach()))
        out_of_time = config.time_limit is not None and time.perf_counter() - started > config.time_limit
        if (step + 1) % every == 0 or step + 1 == total or out_of_time:
            network.eval()
            score = validation_mae(fitted, sequences, cutoffs) if cutoffs else None
            history.append({"step": step + 1, "loss": float(np.mean(losses)), "val_mae": score,
                            "seconds": round(time.perf_counter() - started, 3)})
            losses = []
            if progress is not None:
                progress(step + 1, total, history[-1]["loss"], score)
            if score is not None and score < best:
                best, best_state, stale = score, copy.deepcopy(network.state_dict()), 0
            elif score is not None:
                stale += 1
            if out_of_time:
                hit_limit = step + 1 < total
                break
            if stale >= patience and step + 1 < total:
                stopped = True
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return history, hit_limit, stopped

"""`fit`: train a latent ODE on sequences (Adamax, IWAE loss with KL annealing, gradient clipping)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable

import numpy as np
import torch

from model.calibration import Calibration, hide_context_points
from model.config import ModelConfig
from model.data import (
    Example,
    Normaliser,
    RowTargets,
    Sequence,
    TargetBatch,
    distinct_times,
    encoder_batch,
    row_targets,
    target_batch,
)
from model.errors import InputError, NonFiniteLossError, TrainingCancelled
from model.fitted import EpochRecord, FittedModel, resolve_device
from model.network import LatentODE
from model.predict import _Request, _sample, observation_std, spread
from model.solver import train_solve
from model.windows import draw_examples, window_spans

__all__ = ["fit", "calibrate", "check_training_sequences", "batch_loss", "evaluate_mse", "targets_of", "lr_factor",
           "Adamax"]

Progress = Callable[[int, int, float, "float | None"], None]


def check_training_sequences(sequences: Iterable[Sequence], what: str = "sequences") -> list[Sequence]:
    """All Sequences, same channels, each with at least two observed times; no key given twice."""
    sequences = list(sequences)
    if not sequences:
        raise InputError(f"{what}: need at least one sequence")
    for k, s in enumerate(sequences):
        if not isinstance(s, Sequence):
            raise InputError(f"{what}[{k}]: expected a model.Sequence, got {type(s).__name__}")
        if s.channels != sequences[0].channels:
            raise InputError(f"{what}[{k}]: channels {list(s.channels)} differ from {list(sequences[0].channels)}")
    keys = [s.key for s in sequences if s.key is not None]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise InputError(f"{what}: key {twice!r} is given to more than one sequence")
    sequences = [s.select(s.channels) for s in sequences]  # drop rows with nothing observed
    for k, s in enumerate(sequences):
        if s.times.size < 2:
            raise InputError(f"{what}[{k}]: needs at least 2 observed times, has {s.times.size}")
    return sequences


def kl_coefficient(epoch: int, config: ModelConfig) -> float:
    """0 for the warm-up epochs, then 1 - rate^(epoch - warmup) (the reference's schedule; epoch is 1-based)."""
    if epoch <= config.kl_warmup_epochs:
        return 0.0
    return 1.0 - config.kl_anneal_rate ** (epoch - config.kl_warmup_epochs)


def lr_factor(step: int, total_steps: int, config: ModelConfig) -> float:
    """Learning rate of optimiser step `step` (0-based) of `total_steps`, as a fraction of config.learning_rate."""
    exponential = max(config.lr_decay**step, 0.1 if config.lr_schedule == "exponential" else 0.01)
    cosine = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    return {"exponential": exponential, "cosine": cosine, "decay": min(exponential, cosine)}[config.lr_schedule]


class Adamax:
    """torch.optim.Adamax's update (Kingma & Ba 2015, §7.1; betas (0.9, 0.999), eps 1e-8, no weight decay), in
    foreach ops, with the learning rate given at each step (`lr_factor`'s schedule).

    torch.optim's optimisers import torch._dynamo when the first one is built: 0.5-0.9 s of every training process
    here (about 1% of a benchmark run). tests/model/test_training.py holds this to torch.optim.Adamax step for step.
    A parameter without a gradient is left alone, state and all, as torch does.
    """

    def __init__(self, params: Iterable[torch.Tensor], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        self.betas, self.eps = betas, eps
        self.steps = [0] * len(self.params)  # per parameter: those without a gradient skip a step
        self.means = [torch.zeros_like(p) for p in self.params]  # m, the moving average of gradients
        self.norms = [torch.zeros_like(p) for p in self.params]  # u, the decaying max of |gradient|

    @torch.no_grad()
    def step(self, lr: float) -> None:
        beta1, beta2 = self.betas
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        grads = [g for i in live if (g := self.params[i].grad) is not None]  # all of `live`'s
        means, norms = [self.means[i] for i in live], [self.norms[i] for i in live]
        torch._foreach_lerp_(means, grads, 1 - beta1)  # m ← β1 m + (1 − β1) g
        torch._foreach_mul_(norms, beta2)  # u ← max(β2 u, |g| + ε)
        torch._foreach_maximum_(norms, torch._foreach_add(torch._foreach_abs(grads), self.eps))
        for i in live:
            self.steps[i] += 1
            self.params[i].addcdiv_(self.means[i], self.norms[i], value=-lr / (1 - beta1 ** self.steps[i]))

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def targets_of(examples: list[Example], config: ModelConfig, dtype: torch.dtype,
               device: torch.device) -> TargetBatch | RowTargets:
    """The examples' targets as the solve reads them: each window on its own row of a grid (RowTargets) where the
    windows have times of their own (more distinct target times than config.target_grid and than twice the longest
    window's), else on the union of their times (TargetBatch: windows on one shared grid, or target_grid None)."""
    targets = [(e.tgt_t, e.tgt_x) for e in examples]
    own = max((len(t) for t, _ in targets), default=0)
    if config.target_grid is not None and distinct_times(targets, dtype) > max(config.target_grid, 2 * own):
        return row_targets(targets, dtype, device, config.target_grid)
    return target_batch(targets, dtype, device)


def batch_loss(network: LatentODE, examples: list[Example], config: ModelConfig, kl_coef: float,
               generator: torch.Generator, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(IWAE loss, normalised MSE) of one batch, its targets as `targets_of` lays them out: where the windows have
    times of their own, solved on config.target_grid evenly spaced times with every target read from it;
    otherwise (windows on one shared grid, as the papers' tasks) at the targets' own times, and with `rng` and
    config.train_output_times the loss covers a random subset of them (always keeping time 0)."""
    device = next(network.parameters()).device
    dtype = next(network.parameters()).dtype
    enc = encoder_batch([(e.ctx_t, e.ctx_x) for e in examples], dtype, device)
    tgt = targets_of(examples, config, dtype, device)
    limit = config.train_output_times
    if isinstance(tgt, TargetBatch) and rng is not None and limit is not None and tgt.times.numel() > limit + 1:
        keep = np.sort(rng.choice(np.arange(1, tgt.times.numel()), size=limit, replace=False))
        index = torch.as_tensor(np.concatenate([[0], keep]), device=device)
        tgt = TargetBatch(tgt.times[index], tgt.values[:, index], tgt.mask[:, index])
    eps = torch.randn(config.iwae_samples, len(examples), config.latent_dim, generator=generator,
                      dtype=dtype, device=generator.device).to(device)
    return network.loss(enc, tgt, eps, kl_coef, lambda z0, t: train_solve(network.dynamics, z0, t, config))


@torch.no_grad()
def evaluate_mse(network: LatentODE, examples: list[Example], norm: Normaliser, config: ModelConfig) -> float:
    """MSE in original units over all target points, decoding the posterior mean of z0 (deterministic); the
    targets laid out as training reads them (`targets_of`)."""
    device = next(network.parameters()).device
    dtype = next(network.parameters()).dtype
    total, count = 0.0, 0
    for start in range(0, len(examples), config.batch_size):
        chunk = examples[start:start + config.batch_size]
        enc = encoder_batch([(e.ctx_t, e.ctx_x) for e in chunk], dtype, device)
        tgt = targets_of(chunk, config, dtype, device)
        mean, _ = network.posterior(enc)
        xhat = network.decode_at(mean, tgt, lambda z0, t: train_solve(network.dynamics, z0, t, config))  # (B, T, C)
        scale = torch.as_tensor(norm.std, dtype=dtype, device=device)
        err = (xhat - tgt.values) * scale * tgt.mask
        total += float((err**2).sum())
        count += int(tgt.mask.sum())
    return total / max(count, 1)


def fit(sequences: Iterable[Sequence], config: ModelConfig, *, validation: Iterable[Sequence] | None = None,
        progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> FittedModel:
    """Train a latent ODE on `sequences` (all with the same channels).

    progress(epoch, epochs, train_loss, val_mse) is called after each epoch (epoch 1-based; val_mse None without
    `validation`); should_stop() is polled before every batch and stops training with TrainingCancelled.
    config.frame "local" (model/local.py) trains on windows of context + horizon in each window's own frame, for
    config.train_steps steps, and picks its own validation cut-offs in the newest part of each sequence (sequences
    in `validation` are trained on as further sequences: pass each series whole). The rest of this paragraph is
    the global frame's:
    with `validation`, the weights of the epoch with the best validation MSE are kept and `patience` counts epochs
    without a better one; without it, patience counts epochs without a lower training loss. At the end the
    forecast bands are calibrated on windows of `validation` (of `sequences` without it): see model/calibration.py.
    Raises InputError, NonFiniteLossError, SolverError, TrainingCancelled.
    """
    sequences = check_training_sequences(sequences)
    if config.frame == "local":
        if validation is not None:  # the local frame makes its own cut-offs in the newest part of each series
            sequences = sequences + check_training_sequences(validation, "validation")
            if sequences[-1].channels != sequences[0].channels:
                raise InputError(f"validation channels {list(sequences[-1].channels)} differ from "
                                 f"{list(sequences[0].channels)}")
        from model.local import fit_local

        return fit_local(sequences, config, progress, should_stop)
    channels = sequences[0].channels
    val_sequences = None if validation is None else check_training_sequences(validation, "validation")
    if val_sequences is not None and val_sequences[0].channels != channels:
        raise InputError(f"validation channels {list(val_sequences[0].channels)} differ from {list(channels)}")
    device = resolve_device(config.device)
    spans = window_spans(sequences, config)
    norm = Normaliser.fit(sequences, spans, config.time_span)
    rng = np.random.default_rng(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = LatentODE(len(channels), config).to(device)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    first = draw_examples(sequences, norm, config, rng)
    beyond = [(e.tgt_t[-1] - e.ctx_t[-1]) * norm.time_scale for e in first]
    horizon = config.horizon_factor * float(np.max(beyond))
    context_seconds = float(np.median([(e.ctx_t[-1]) * norm.time_scale for e in first]))
    context_seconds = max(context_seconds, config.context_fraction * float(np.median(spans)))
    val_examples = None
    if val_sequences is not None:
        val_examples = draw_examples(val_sequences, norm, config, np.random.default_rng(config.seed + 1))

    optimiser = Adamax(network.parameters())
    total_steps = config.epochs * math.ceil(len(first) / config.batch_size)  # windows per epoch vary a little
    step = 0
    history: list[EpochRecord] = []
    best, best_state, stale = math.inf, None, 0
    examples = first
    for epoch in range(1, config.epochs + 1):
        started, evaluations = time.perf_counter(), network.dynamics.nfe
        if epoch > 1:
            examples = draw_examples(sequences, norm, config, rng)
        kl_coef = kl_coefficient(epoch, config)
        network.train()
        losses = []
        for start in range(0, len(examples), config.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"training cancelled during epoch {epoch}", epoch)
            loss, _ = batch_loss(network, examples[start:start + config.batch_size], config, kl_coef, generator, rng)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss became {float(loss.detach())} in epoch {epoch}, batch {start // config.batch_size + 1}; "
                    "try a lower learning_rate or a larger obs_std", epoch)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), config.grad_clip)
            optimiser.step(config.learning_rate * lr_factor(step, total_steps, config))
            step += 1
            losses.append(float(loss.detach()))
        network.eval()
        evaluations = network.dynamics.nfe - evaluations
        train_loss = float(np.mean(losses))
        val_mse = None if val_examples is None else evaluate_mse(network, val_examples, norm, config)
        history.append({"epoch": epoch, "loss": train_loss, "val_mse": val_mse,
                        "seconds": time.perf_counter() - started, "nfe": evaluations})
        if progress is not None:
            progress(epoch, config.epochs, train_loss, val_mse)
        score = train_loss if val_mse is None else val_mse
        if score < best:
            best, stale = score, 0
            if val_mse is not None:
                best_state = copy.deepcopy(network.state_dict())
        else:
            stale += 1
            if config.patience is not None and stale >= config.patience:
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    fitted = FittedModel(config=config, channels=channels, network=network, normaliser=norm, horizon=horizon,
                         context_seconds=context_seconds, history=history)
    fitted.calibration = calibrate(fitted, val_sequences or sequences, np.random.default_rng(config.seed + 2))
    return fitted


CALIBRATION_WINDOWS = 500  # at most this many held-out windows ...
CALIBRATION_SAMPLES = 32  # ... forecast with this many z0 samples each


def calibrate(fitted: FittedModel, sequences: list[Sequence], rng: np.random.Generator) -> Calibration:
    """Standardised residuals of `fitted`'s forecasts on windows drawn from `sequences` (see model/calibration.py):
    each window's context less a fifth of its inner points, scored on those and on every point after it."""
    config, norm = fitted.config, fitted.normaliser
    # whole contexts (context_keep 1, as forecasts read every stored point), less the hidden fifth
    examples = draw_examples(sequences, norm, config.replace(context_keep=1.0), rng)[:CALIBRATION_WINDOWS]
    offsets, residuals = [], []
    obs_std = observation_std(fitted)
    for start in range(0, len(examples), config.batch_size):
        shown = [hide_context_points(e, rng) for e in examples[start:start + config.batch_size]]
        requests = [_Request(e.ctx_t, e.ctx_x, e.tgt_t, np.arange(e.tgt_t.size), e.tgt_t) for e, _ in shown]
        draws, _ = _sample(fitted, requests, CALIBRATION_SAMPLES, [start + i for i in range(len(requests))])
        for (e, scored), (decoded, _) in zip(shown, draws, strict=True):
            mean, scale = spread(decoded, obs_std)
            offsets.append(e.tgt_t[scored] - e.ctx_t[-1])
            residuals.append(((e.tgt_x - mean) / scale)[scored])
    channels = len(fitted.channels)
    return Calibration.from_residuals(  # no windows at all: the standard normal's quantiles stand in
        np.concatenate(offsets) if offsets else np.zeros(0),
        np.concatenate(residuals) if residuals else np.zeros((0, channels)), fitted.horizon / norm.time_scale)

"""Training windows: which stretch of a series is one example, what the encoder sees of it, what the loss scores.

A window of `config.window` seconds (or a whole sequence when window is None) starts at its first observation.
The encoder sees the points in its first `context_fraction` (by time), each kept with probability `context_keep`;
the loss scores every point of the window. So one model learns to fill gaps and to extrapolate.
"""

from __future__ import annotations

import numpy as np

from model.arrays import FloatArray
from model.config import ModelConfig
from model.data import Example, Normaliser, Sequence

__all__ = ["window_spans", "draw_examples"]


def window_spans(sequences: list[Sequence], config: ModelConfig) -> FloatArray:
    """Seconds spanned by the training windows: (n,) one per sequence."""
    spans = np.array([s.times[-1] - s.times[0] for s in sequences])
    if config.window is not None:
        spans = np.minimum(spans, config.window)
    return spans


def _windows(sequence: Sequence, config: ModelConfig, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Index ranges [i, j) of the windows drawn from one sequence this epoch."""
    times = sequence.times
    duration = times[-1] - times[0]
    if config.window is None or duration <= config.window:
        return [(0, times.size)]
    count = max(1, int(round(duration / config.window)))
    starts = rng.uniform(times[0], times[-1] - config.window, size=count)
    out = []
    for start in starts:
        i = int(np.searchsorted(times, start))
        j = int(np.searchsorted(times, times[i] + config.window, side="right"))
        if j - i >= 2:
            out.append((i, j))
    return out


def make_example(sequence: Sequence, i: int, j: int, norm: Normaliser, config: ModelConfig,
                 rng: np.random.Generator) -> Example:
    """The example for rows [i, j) of `sequence`; its context always holds at least the window's first point."""
    times = sequence.times[i:j]
    values = norm.values(sequence.values[i:j])
    t = norm.model_time(times, times[0])
    cut = t[-1] * config.context_fraction
    in_context = t <= cut if config.context_fraction < 1 else np.ones(t.size, dtype=bool)
    if config.context_keep < 1:
        in_context &= rng.random(t.size) < config.context_keep
    if not in_context.any():
        in_context[0] = True  # the encoder needs something; the first point is always in the context range
    return Example(ctx_t=t[in_context], ctx_x=values[in_context], tgt_t=t, tgt_x=values)


def draw_examples(sequences: list[Sequence], norm: Normaliser, config: ModelConfig,
                  rng: np.random.Generator) -> list[Example]:
    """One epoch's examples, in random order."""
    examples = []
    for sequence in sequences:
        for i, j in _windows(sequence, config, rng):
            examples.append(make_example(sequence, i, j, norm, config, rng))
    order = rng.permutation(len(examples))
    return [examples[k] for k in order]

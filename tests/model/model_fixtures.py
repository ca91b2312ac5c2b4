"""Tiny data and config for the model tests (fixed seeds)."""

from __future__ import annotations

import numpy as np

from model import ModelConfig, Sequence

T0 = 1.7e9  # Unix-seconds origin: the library must cope with large absolute times


def sine_sequences(count: int, points: int, seed: int, second_channel: bool = True) -> list[Sequence]:
    """Sines with random frequency on random times in [0, 5] s after T0; channel "b" seen at about half the times."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        t = np.sort(rng.uniform(0, 5, points))
        t[0] = 0.0
        f = rng.uniform(0.4, 0.8)
        a = np.sin(2 * np.pi * f * t) + 1
        if second_channel:
            b = np.where(rng.random(points) < 0.5, np.cos(2 * np.pi * f * t), np.nan)
            out.append(Sequence(T0 + t, np.stack([a, b], axis=1), ("a", "b")))
        else:
            out.append(Sequence(T0 + t, a[:, None], ("a",)))
    return out


# The global frame: the network machinery these tests hold (test_local_frame.py covers the local frame).
TINY = ModelConfig(frame="global", latent_dim=4, hidden_dim=8, units=16, dynamics_layers=1, epochs=2, batch_size=8,
                   gradient="backprop", iwae_samples=2, device="cpu")

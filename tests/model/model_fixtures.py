"""Tiny data and config for the model tests (fixed seeds)."""

from __future__ import annotations

import numpy as np

from model import ModelConfig, Sequence

T0 = 1.7e9  # Unix-seconds origin: the library must cope with large absolute times
DAY = 86_400.0
YEAR = 365.2425 * DAY


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


def seasonal(n: int, seed: int, noise: float = 0.1, keep: float = 0.6) -> Sequence:
    """A half-daily-sampled series with a daily season, a weekly one, a slow trend and noise; `keep` of its times."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(n) * DAY / 24
    x = 5 + 0.01 * np.arange(n) + np.sin(2 * np.pi * t / DAY) + 0.5 * np.sin(2 * np.pi * t / (7 * DAY))
    x = x + noise * rng.normal(size=n)
    kept = rng.random(n) < keep
    return Sequence(t[kept], x[kept], ("v",))


def monthly_climate(years: int, seed: int) -> Sequence:
    """Monthly readings (60% kept) of a yearly cycle of 365.2425 days with noise around a steady mean."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(12 * years) * (365.2425 / 12) * DAY
    x = 20 + 2 * np.sin(2 * np.pi * t / (365.2425 * DAY)) + 0.3 * rng.normal(size=t.size)
    kept = rng.random(t.size) < 0.6
    return Sequence(t[kept], x[kept], ("v",))

"""Test data for training: series written through the storage layer's write path."""

import numpy as np
from sqlalchemy import Engine

from service import storage

T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z

# A model small enough to train in well under a second per epoch on one CPU thread; the global frame (epochs) keeps
# these job-machinery tests quick and their progress counts small. TINY_LOCAL: the default frame, a few steps.
TINY = {"frame": "global", "latent_dim": 4, "hidden_dim": 8, "units": 16, "dynamics_layers": 1, "solver": "rk4",
        "step_size": 0.5,
        "gradient": "backprop", "iwae_samples": 1, "kl_warmup_epochs": 0, "batch_size": 16, "epochs": 2,
        "device": "cpu"}
TINY_LOCAL = {**{k: v for k, v in TINY.items() if k not in ("frame", "epochs")}, "train_steps": 20}


def add_series(engine: Engine, key: str, channels: tuple[str, ...] = ("a", "b"), n: int = 200, seed: int = 0,
               every_s: float = 1.0) -> int:
    """A series of `n` irregular times (about `every_s` apart) with a sine per channel, some values missing."""
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(0.5 * every_s, 1.5 * every_s, size=n)
    t_us = T0_US + np.cumsum(np.round(gaps * 1e6)).astype(np.int64)
    record = storage.create_series(engine, key, channels, "", {})
    ch, ts, vs = [], [], []
    for k in range(len(channels)):
        seconds = (t_us - T0_US) / 1e6
        values = np.sin(seconds / 10.0 + k) + 0.05 * rng.standard_normal(n)
        keep = rng.random(n) > 0.2
        ch.append(np.full(keep.sum(), k))
        ts.append(t_us[keep])
        vs.append(values[keep])
    storage.upsert_observations(engine, record.id, channels, np.concatenate(ch), np.concatenate(ts),
                                np.concatenate(vs))
    return record.id

"""Test data for training: series written straight into the tables (independent of the storage API's shape)."""

import numpy as np
from sqlalchemy import Engine, insert

from service.tables import observations, series
from service.timefmt import now_us

T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z

# A model small enough to train in well under a second per epoch on one CPU thread.
TINY = {"latent_dim": 4, "hidden_dim": 8, "units": 16, "dynamics_layers": 1, "solver": "rk4", "step_size": 0.5,
        "gradient": "backprop", "iwae_samples": 1, "kl_warmup_epochs": 0, "batch_size": 16, "epochs": 2,
        "device": "cpu"}


def add_series(engine: Engine, key: str, channels: tuple[str, ...] = ("a", "b"), n: int = 200, seed: int = 0,
               every_s: float = 1.0) -> int:
    """A series of `n` irregular times (about `every_s` apart) with a sine per channel, some values missing."""
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(0.5 * every_s, 1.5 * every_s, size=n)
    t_us = T0_US + np.cumsum(np.round(gaps * 1e6)).astype(np.int64)
    with engine.begin() as conn:
        series_id = conn.execute(insert(series).values(key=key, channels=list(channels), description="", meta={},
                                                       created_at=now_us()).returning(series.c.id)).scalar_one()
        rows = []
        for k, channel in enumerate(channels):
            seconds = (t_us - T0_US) / 1e6
            values = np.sin(seconds / 10.0 + k) + 0.05 * rng.standard_normal(n)
            keep = rng.random(n) > 0.2
            rows += [{"series_id": series_id, "channel": channel, "t": int(t), "value": float(v)}
                     for t, v in zip(t_us[keep], values[keep], strict=True)]
        conn.execute(insert(observations), rows)
    return series_id

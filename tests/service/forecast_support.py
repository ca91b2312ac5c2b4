"""A toy model trained once per test session, and helpers that publish it as a ready model version.

The toy data: each series holds one level (drawn in -2..2) plus small noise, sampled at irregular times over
100 s. A model that learned anything reproduces a series' level from its context; one that did not predicts the
training mean (about 0).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
from sqlalchemy import Engine, insert

import model
from service import storage
from service.forecasting.cache import CacheKey, StoredModel
from service.storage import registry
from service.storage.tables import models
from service.times.timefmt import now_us

S = 1_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z, µs
CHANNELS = ("temp",)


def toy_sequence(rng: np.random.Generator, level: float, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(times in seconds from 0, sorted distinct (n,)), values (n,)."""
    t = np.unique(np.round(rng.uniform(0, 100, n), 3))
    return t, level + 0.05 * rng.standard_normal(t.size)


@functools.cache
def toy_model() -> model.FittedModel:
    """Fit once per session: 16 toy series, a tiny network, fixed seeds (about 10-20 s on 2 shared cores)."""
    rng = np.random.default_rng(0)
    seqs = [model.Sequence(*toy_sequence(rng, rng.uniform(-2, 2)), CHANNELS) for _ in range(16)]
    config = model.ModelConfig(frame="global", latent_dim=4, hidden_dim=8, units=16, epochs=30, batch_size=16,
                               gradient="backprop", iwae_samples=1, kl_warmup_epochs=2, solver="rk4",
                               step_size=0.25, learning_rate=5e-2, obs_std=0.05, seed=0)
    return model.fit(seqs, config)


@functools.cache
def toy_artifact() -> bytes:
    return model.to_bytes(toy_model())


def toy_stored(reads: list[int] | None = None) -> StoredModel:
    """The toy model as a solver is handed it: a key and a reader of its artifact, which appends to `reads`."""
    artifact = toy_artifact()

    def read() -> bytes:
        if reads is not None:
            reads.append(len(artifact))
        return artifact

    return StoredModel(CacheKey(1, 1, hashlib.sha256(artifact).hexdigest()), len(artifact), read)


def perturbed_artifact(shift: float) -> bytes:
    """Another model of the same shape (what a retraining would publish): every weight moved by `shift`."""
    fitted = model.from_bytes(toy_artifact())
    for p in fitted.network.parameters():
        p.data += shift
    return model.to_bytes(fitted)


def publish(engine: Engine, name: str, version: int, artifact: bytes, series: list[str], *,
            status: str = "ready", trained_at: int | None = None, metrics: dict | None = None) -> int:
    """Insert a model version row as the training worker publishes it (with `metrics` as training stored them);
    returns its id."""
    fitted = model.from_bytes(artifact)
    now = now_us()
    ready = status == "ready"
    with engine.begin() as conn:
        model_id: int = conn.execute(insert(models).values(
            name=name, version=version, status=status, config=fitted.config.to_dict(),
            channels=list(fitted.channels), series=series,
            stats={"horizon_s": fitted.horizon, "context_s": fitted.context_seconds} if ready else None,
            metrics=metrics,
            artifact=artifact if ready else None,
            artifact_sha256=hashlib.sha256(artifact).hexdigest() if ready else None,
            created_at=now, trained_at=(trained_at or now) if ready else None,
        ).returning(models.c.id)).scalar_one()
        registry.link_series(conn, model_id, series)
        return model_id


def add_series(engine: Engine, key: str, t_s: np.ndarray, values: np.ndarray,
               channels: tuple[str, ...] = CHANNELS) -> storage.SeriesRecord:
    """A series with observations of its first channel at T0 + t_s seconds."""
    rec = storage.create_series(engine, key, list(channels), "", {})
    add_points(engine, rec, t_s, values)
    return rec


def add_points(engine: Engine, rec: storage.SeriesRecord, t_s: np.ndarray, values: np.ndarray) -> None:
    t_us = T0 + np.round(np.asarray(t_s) * S).astype(np.int64)
    storage.upsert_observations(engine, rec.id, rec.channels, np.zeros(t_us.size, dtype=np.int64), t_us,
                                np.asarray(values, dtype=np.float64))

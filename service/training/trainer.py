"""One training job, start to end, inside a worker process.

claim ─► read the chosen series' common channels from the database ─► global frame: split by time (the last
VALIDATION_FRACTION of each series validates); local frame: each series whole (fit draws its own validation
cut-offs) ─► model.fit, reporting each epoch to the job row ─► artifact, statistics, metrics (with fit's backtest,
when it ran one) and `ready` in one transaction. A heartbeat thread keeps the claim alive between epochs.

This module imports torch (through model/); only a worker process imports it, when it runs its first job.
"""

import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sqlalchemy import Engine

from model import (
    FittedModel,
    ModelConfig,
    ModelError,
    NonFiniteLossError,
    Sequence,
    SolverError,
    TrainingCancelled,
    fit,
    to_bytes,
)
from service import storage
from service.config import Settings
from service.storage import jobs, registry
from service.training import executor

log = logging.getLogger(__name__)

# The newest fifth of each series' time range is held out: validation is extrapolation into unseen time.
VALIDATION_FRACTION = 0.2


class JobWatch:
    """The running job's link to its row: heartbeats on a thread, progress per epoch, the stop decision.

    `should_stop()` is read by fit between steps; it turns true when a cancel is requested, the worker is
    shutting down, or the job is no longer ours (the sweeper took it back or the version was deleted).
    """

    def __init__(self, engine: Engine, job_id: str, worker: str, *, every_s: float, shutdown: threading.Event):
        self.engine, self.job_id, self.worker = engine, job_id, worker
        self.every_s, self.shutdown = every_s, shutdown
        self.cancel_requested = False
        self.lost = False
        self.progress: dict[str, Any] | None = None
        self.started = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id[:8]}", daemon=True)

    def __enter__(self) -> "JobWatch":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _record(self, answer: bool | None) -> None:
        if answer is None:
            self.lost = True
        else:
            self.cancel_requested = self.cancel_requested or answer

    def _beat(self) -> None:
        while not self._done.wait(self.every_s):
            try:
                self._record(jobs.heartbeat(self.engine, self.job_id, self.worker))
            except Exception:  # a missed beat is survivable; the next one may get through
                log.exception("heartbeat of job %s failed", self.job_id)

    def on_epoch(self, epoch: int, epochs: int, train_loss: float, val_mse: float | None) -> None:
        elapsed = time.monotonic() - self.started
        self.progress = {
            "epoch": epoch, "epochs": epochs, "loss": _finite_or_none(train_loss), "val_mse": _finite_or_none(val_mse),
            "elapsed_s": round(elapsed, 3), "eta_s": round(elapsed / epoch * (epochs - epoch), 3) if epoch else None,
        }
        try:
            self._record(jobs.heartbeat(self.engine, self.job_id, self.worker, self.progress))
        except Exception:  # a database hiccup must not end hours of training; the next epoch reports again
            log.exception("progress report of job %s failed", self.job_id)

    def should_stop(self) -> bool:
        return self.cancel_requested or self.lost or self.shutdown.is_set()


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def load_sequences(engine: Engine, series_keys: list[str], channels: list[str], *,
                   holdout: bool = True) -> tuple[list[Sequence], list[Sequence]]:
    """Each series' `channels` as model Sequences (times in seconds), as (train, validation).

    holdout: split each series by time, its newest VALIDATION_FRACTION validating (the global frame); a series too
    short to spare a validation part trains whole, and no validation at all means fit scores none. Without
    holdout (the local frame, whose fit cuts its own validation windows) every series trains whole and validation
    is empty.
    """
    train, validation = [], []
    for record in storage.get_many(engine, series_keys):
        t_us, values = storage.read_matrix(engine, record.id, channels)
        if t_us.size < 2:
            continue
        times = t_us.astype(np.float64) / 1e6
        cut = times[0] + (1 - VALIDATION_FRACTION) * (times[-1] - times[0])
        head = times < cut
        if holdout and head.sum() >= 2 and (~head).sum() >= 2:
            train.append(Sequence(times[head], values[head], tuple(channels), record.key))
            validation.append(Sequence(times[~head], values[~head], tuple(channels)))
        else:
            train.append(Sequence(times, values, tuple(channels), record.key))
    return train, validation


def run_job(engine: Engine, settings: Settings, job_id: str, *, worker_id: str, shutdown: threading.Event) -> str:
    """Claim and run training job `job_id`; return how it ended (for logs and tests).

    Never raises for a failure inside the job: the job row records it. A message for a job that is not
    claimable (already running elsewhere, finished, cancelled) does nothing: that makes doubled messages harmless.
    """
    job = jobs.claim(engine, job_id, worker_id)
    if job is None:
        log.info("job %s not claimable (taken, finished or cancelled): message ignored", job_id)
        return "skipped"
    if job.model_id is None:  # its version was deleted between claim and here: nothing to train for
        return "lost"
    log.info("job %s claimed by %s (attempt %d)", job_id, worker_id, job.attempts)
    with JobWatch(engine, job_id, worker_id, every_s=settings.heartbeat_seconds, shutdown=shutdown) as watch:
        try:
            version = registry.get_by_id(engine, job.model_id)
            config = ModelConfig.from_dict(version.config)
            if (missing := device_missing(config.device)) is not None:
                return _fail(engine, job_id, worker_id, f"training failed: {missing}", watch)
            train, validation = load_sequences(engine, version.series, version.channels,
                                               holdout=config.frame == "global")
            if not train:
                raise ValueError(f"series {version.series} hold fewer than 2 observation times in channels "
                                 f"{version.channels}: nothing to train on")
            fitted = fit(train, config, validation=validation or None, progress=watch.on_epoch,
                         should_stop=watch.should_stop)
            artifact = to_bytes(fitted)
        except TrainingCancelled:
            return _stopped(engine, settings, job_id, worker_id, watch)
        except (NonFiniteLossError, SolverError) as exc:
            return _fail(engine, job_id, worker_id, f"training failed: {exc}", watch)
        except ModelError as exc:
            return _fail(engine, job_id, worker_id, f"training failed ({type(exc).__name__}): {exc}", watch)
        except Exception as exc:
            log.exception("job %s crashed", job_id)
            return _fail(engine, job_id, worker_id, f"training crashed: {type(exc).__name__}: {exc}", watch)
        if watch.lost:
            return "lost"
        stats = {"horizon_s": float(fitted.horizon), "context_s": float(fitted.context_seconds),
                 "channels": list(fitted.channels), "train_sequences": len(train),
                 "validation_sequences": len(validation)}
        stats.update(_statistics(fitted))
        metrics = _metrics(fitted)
        if not jobs.succeed(engine, job_id, worker_id, job.model_id, artifact=artifact, stats=stats,
                            metrics=metrics, progress=watch.progress):
            log.warning("job %s finished training but is no longer %s's: result dropped", job_id, worker_id)
            return "lost"
    log.info("job %s succeeded: %s version %d ready", job_id, version.name, version.version)
    return "succeeded"


def device_missing(device: str) -> str | None:
    """Why this worker cannot train on `device` (a ModelConfig.device, well-formed), or None when it can.

    The API accepts any well-formed device: the worker that takes the job may have GPUs the API machine lacks.
    Each worker checks its own, so that a missing one fails the job with this reason, not a torch assertion.
    """
    if device in ("auto", "cpu"):
        return None
    if device == "mps":
        have = torch.backends.mps.is_available()
        found = "an MPS device" if have else "no MPS device"
    else:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        have = int(device.partition(":")[2] or 0) < count
        found = f"{count} CUDA device{'s' if count != 1 else ''}"
    if have:
        return None
    return f"device {device!r} is not on this worker ({found}): use device 'auto' or 'cpu', or a worker that has it"


def _stopped(engine: Engine, settings: Settings, job_id: str, worker_id: str, watch: JobWatch) -> str:
    if watch.lost:
        return "lost"
    if watch.cancel_requested or jobs.get_job(engine, job_id).cancel_requested:
        jobs.finish(engine, job_id, worker_id, jobs.JobStatus.CANCELLED, error="cancelled on request")
        return "cancelled"
    # The worker is shutting down: hand the job back so another worker (or this one, restarted) resumes it.
    if jobs.release(engine, job_id, worker_id):
        executor.submit(settings, job_id)
    return "released"


def _fail(engine: Engine, job_id: str, worker_id: str, message: str, watch: JobWatch) -> str:
    if not watch.lost:
        jobs.finish(engine, job_id, worker_id, jobs.JobStatus.FAILED, error=message)
    return "failed"


def _statistics(fitted: FittedModel) -> dict[str, Any]:
    """Normalisation and time scale, when the fitted model exposes them (they are also inside the artifact)."""
    norm = getattr(fitted, "normaliser", None)
    if norm is None:
        return {}
    return {"mean": [float(x) for x in norm.mean], "std": [float(x) for x in norm.std],
            "time_scale_s": float(norm.time_scale)}


def _metrics(fitted: FittedModel) -> dict[str, Any]:
    """From the fit history. Local frame: `steps_run`, `val_mae` of the kept weights (the best validation score),
    `best_step`, `last_val_mae`, `component` (the classical part chosen from the data; on several series the shared
    one, and `series_components` those series whose own differs) and `backtest`, the model's
    own backtest against the baselines (forecasts read it to warn when this version loses). Global frame: fit keeps
    the weights of the best epoch: `val_mse` is that epoch's score, `last_val_mse` the final epoch's, `epochs_run`."""
    history: list[Mapping[str, Any]] = list(fitted.history or [])  # StepRecords (local frame) or EpochRecords
    backtest = getattr(fitted, "backtest", None)
    if backtest is not None:  # the local frame: scored by steps, its validation score an MAE
        out: dict[str, Any] = {"steps_run": int(history[-1]["step"]) if history else 0,
                               "backtest": _json_safe(backtest)}
        if fitted.component is not None:  # what the data chose: seasons, context, trend...
            out["component"] = _json_safe(fitted.component.to_dict())
        if fitted.components:  # several series: the ones whose own cut-offs chose another component
            out["series_components"] = {key: _json_safe(c.to_dict()) for key, c in fitted.components.items()
                                        if c != fitted.component}
        scored = [h for h in history if h.get("val_mae") is not None and math.isfinite(h["val_mae"])]
        if history:
            out["train_loss"] = _finite_or_none(history[-1].get("loss"))
        if scored:
            best = min(scored, key=lambda h: h["val_mae"])
            out.update(val_mae=float(best["val_mae"]), best_step=int(best["step"]),
                       last_val_mae=_finite_or_none(history[-1].get("val_mae")))
        return out
    out = {"epochs_run": len(history)}
    if not history:
        return out
    out["train_loss"] = _finite_or_none(history[-1].get("loss"))
    scored = [h for h in history if h.get("val_mse") is not None and math.isfinite(h["val_mse"])]
    if scored:
        best = min(scored, key=lambda h: h["val_mse"])
        out.update(val_mse=float(best["val_mse"]), best_epoch=int(best["epoch"]),
                   last_val_mse=_finite_or_none(history[-1].get("val_mse")))
    return out


def _json_safe(value: Any) -> Any:
    """`value` with numpy scalars as Python numbers and non-finite floats as None: PostgreSQL's JSON refuses NaN,
    and a ratio over a zero baseline error is one."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite_or_none(float(value))
    return value

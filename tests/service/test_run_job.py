"""run_job in this process (no queue): data from the database, progress, publish, failure, shutdown."""

import threading
import uuid

import numpy as np
import pytest
import torch
from sqlalchemy import Engine

from model import from_bytes
from service import storage
from service.config import Settings
from service.storage import jobs, registry
from service.training import executor, trainer
from service.training import request as train_request
from tests.training_data import TINY, add_series


def _job(engine: Engine, series: list[str], **config: object) -> jobs.Job:
    plan = train_request.plan(engine, series, {**TINY, **config})
    job, _ = jobs.create_training(engine, job_id=str(uuid.uuid4()), name="rooms", config=plan.config,
                                  channels=plan.channels, series=plan.series)
    return job


def _run(engine: Engine, settings: Settings, job: jobs.Job, shutdown: threading.Event | None = None) -> str:
    return trainer.run_job(engine, settings, job.id, worker_id="test-worker", shutdown=shutdown or threading.Event())


def test_trains_publishes_and_reports_progress(engine: Engine, settings: Settings) -> None:
    add_series(engine, "room-1", ("temp", "hum"), seed=1)
    add_series(engine, "room-2", ("hum", "temp", "co2"), seed=2)
    job = _job(engine, ["room-1", "room-2"], epochs=2)
    assert _run(engine, settings, job) == "succeeded"

    done = jobs.get_job(engine, job.id)
    assert done.status == "succeeded" and done.attempts == 1 and done.error is None
    assert done.progress["epoch"] == done.progress["epochs"] == 2 and done.progress["eta_s"] == 0
    assert done.progress["val_mse"] is not None and done.progress["elapsed_s"] > 0
    version = registry.get_version(engine, "rooms", 1)
    assert version.status == "ready" and version.channels == ["temp", "hum"]
    assert version.metrics["epochs_run"] == 2
    assert version.metrics["last_val_mse"] == pytest.approx(done.progress["val_mse"])
    # the saved weights are the best epoch's, and so is the reported val_mse
    assert version.metrics["val_mse"] <= version.metrics["last_val_mse"]
    assert version.metrics["best_epoch"] in (1, 2)
    fitted = from_bytes(registry.read_artifact(engine, "rooms", 1))
    assert fitted.channels == ("temp", "hum")
    assert version.stats["horizon_s"] == pytest.approx(fitted.horizon)
    assert version.stats["context_s"] == pytest.approx(fitted.context_seconds)
    assert version.stats["train_sequences"] == version.stats["validation_sequences"] == 2


def test_validation_is_the_newest_part_of_each_series(engine: Engine) -> None:
    add_series(engine, "room-1", ("a",), n=100, seed=3)
    train, validation = trainer.load_sequences(engine, ["room-1"], ["a"])
    assert train[0].times[-1] < validation[0].times[0]
    span = validation[0].times[-1] - train[0].times[0]
    assert validation[0].times[-1] - validation[0].times[0] <= trainer.VALIDATION_FRACTION * span + 1e-6
    assert np.isfinite(train[0].values).all()


def test_without_holdout_every_series_is_whole(engine: Engine) -> None:
    add_series(engine, "room-1", ("a",), n=100, seed=3)
    add_series(engine, "room-2", ("a",), n=50, seed=4)
    train, validation = trainer.load_sequences(engine, ["room-2", "room-1"], ["a"], holdout=False)
    assert validation == [] and len(train) == 2
    for sequence, key in zip(train, ["room-2", "room-1"], strict=True):
        t_us, _ = storage.read_matrix(engine, storage.get_series(engine, key).id, ["a"])
        np.testing.assert_array_equal(sequence.times, t_us / 1e6)  # all of it, in the order asked


def test_the_local_frame_gives_fit_each_series_whole(engine: Engine, settings: Settings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """fit cuts its own validation windows in the local frame: the service splits nothing off."""
    seen = {}
    real_fit = trainer.fit

    def spy(sequences, config, *, validation=None, **kwargs):
        seen.update(lengths=[len(s.times) for s in sequences], validation=validation, frame=config.frame)
        return real_fit(sequences, config, validation=validation, **kwargs)

    monkeypatch.setattr(trainer, "fit", spy)
    add_series(engine, "room-1", ("a",), n=100, seed=7)
    whole = storage.read_matrix(engine, storage.get_series(engine, "room-1").id, ["a"])[0].size
    job = _job(engine, ["room-1"], frame="local", train_steps=2, time_limit=60.0)
    assert _run(engine, settings, job) == "succeeded"
    assert seen == {"lengths": [whole], "validation": None, "frame": "local"}
    version = registry.get_version(engine, "rooms", 1)
    assert version.config["window"] is None
    assert version.stats["train_sequences"] == 1 and version.stats["validation_sequences"] == 0


def test_several_series_train_one_model_with_each_series_named(engine: Engine, settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Each series reaches fit under its key (fit chooses a component per named series); the version's metrics
    hold the shared component and, by key, those series whose own differs from it."""
    seen = {}
    real_fit = trainer.fit

    def spy(sequences, config, *, validation=None, **kwargs):
        seen["keys"] = [s.key for s in sequences]
        fitted = real_fit(sequences, config, validation=validation, **kwargs)
        seen["components"] = fitted.components
        return fitted

    monkeypatch.setattr(trainer, "fit", spy)
    add_series(engine, "room-1", ("a",), n=100, seed=7)
    add_series(engine, "room-2", ("a",), n=100, seed=8)
    job = _job(engine, ["room-1", "room-2"], frame="local", train_steps=2, time_limit=60.0)
    assert _run(engine, settings, job) == "succeeded"
    assert seen["keys"] == ["room-1", "room-2"] and set(seen["components"]) == {"room-1", "room-2"}
    metrics = registry.get_version(engine, "rooms", 1).metrics
    shared = from_bytes(registry.read_artifact(engine, "rooms", 1)).component
    assert metrics["component"] == shared.to_dict()
    assert metrics.get("series_components", {}) == {k: c.to_dict() for k, c in seen["components"].items()
                                                     if c.to_dict() != metrics["component"]}


def test_a_doubled_message_runs_the_job_once(engine: Engine, settings: Settings) -> None:
    add_series(engine, "room-1", seed=4)
    job = _job(engine, ["room-1"], epochs=1)
    assert _run(engine, settings, job) == "succeeded"
    assert _run(engine, settings, job) == "skipped"
    assert jobs.get_job(engine, job.id).attempts == 1


def test_solver_failure_fails_the_job_and_keeps_the_ready_version(engine: Engine, settings: Settings) -> None:
    add_series(engine, "room-1", seed=5)
    good = _job(engine, ["room-1"], epochs=1)
    assert _run(engine, settings, good) == "succeeded"
    bad = _job(engine, ["room-1"], epochs=1, solver="dopri5", max_steps=2, rtol=1e-9, atol=1e-9)
    assert _run(engine, settings, bad) == "failed"
    failed = jobs.get_job(engine, bad.id)
    assert failed.status == "failed" and failed.error.startswith("training failed")
    assert registry.get_version(engine, "rooms", 2).status == "failed"
    assert registry.get_version(engine, "rooms", 1).status == "ready"
    assert from_bytes(registry.read_artifact(engine, "rooms", 1)).channels == ("a", "b")


def test_shutdown_hands_the_job_back_to_the_queue(engine: Engine, settings: Settings) -> None:
    add_series(engine, "room-1", seed=6)
    job = _job(engine, ["room-1"], epochs=5)
    stopping = threading.Event()
    stopping.set()
    assert _run(engine, settings, job, shutdown=stopping) == "released"
    back = jobs.get_job(engine, job.id)
    assert back.status == "queued" and back.attempts == 0
    assert registry.get_version(engine, "rooms", 1).status == "queued"
    assert job.id in executor.pending_job_ids(executor.get_queue(settings).huey)


@pytest.mark.parametrize("device", ["cuda:64", "cuda:63"])
def test_a_device_this_worker_lacks_fails_the_job_saying_so(engine: Engine, settings: Settings, device: str) -> None:
    """The API takes any well-formed device (a GPU worker may run the job); a worker without it fails the job."""
    add_series(engine, "room-1", ("temp",))
    job = _job(engine, ["room-1"], device=device)
    assert _run(engine, settings, job) == "failed"
    done = jobs.get_job(engine, job.id)
    assert done.status == "failed"
    assert done.error.startswith(f"training failed: device '{device}' is not on this worker (")
    assert "use device 'auto' or 'cpu', or a worker that has it" in done.error
    assert registry.get_version(engine, "rooms", 1).status == "failed"


def test_device_missing_names_what_the_worker_has() -> None:
    assert trainer.device_missing("auto") is None and trainer.device_missing("cpu") is None
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    plural = "" if count == 1 else "s"
    assert f"({count} CUDA device{plural})" in trainer.device_missing(f"cuda:{count}")
    assert (trainer.device_missing("cuda:0") is None) == (count > 0)

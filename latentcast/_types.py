"""What the API answers, as frozen dataclasses read from its JSON (times as aware UTC datetimes)."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from latentcast._times import parse_optional_time, parse_time

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Series:
    key: str
    channels: list[str]
    description: str
    metadata: dict[str, Any]
    created_at: datetime
    counts: dict[str, int]  # observations per channel
    first_t: datetime | None
    last_t: datetime | None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Series":
        return cls(key=doc["key"], channels=doc["channels"], description=doc["description"],
                   metadata=doc["metadata"], created_at=parse_time(doc["created_at"]), counts=doc["counts"],
                   first_t=parse_optional_time(doc["first_t"]), last_t=parse_optional_time(doc["last_t"]))


@dataclass(frozen=True)
class WriteResult:
    """Counts in values (cells), summed over every request of an upload."""

    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: "WriteResult") -> "WriteResult":
        return WriteResult(self.received + other.received, self.inserted + other.inserted,
                           self.updated + other.updated, self.unchanged + other.unchanged)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "WriteResult":
        return cls(doc["received"], doc["inserted"], doc["updated"], doc["unchanged"])


@dataclass(frozen=True)
class Progress:
    """A training job's progress. The default (local) frame counts optimiser steps in `epoch`/`epochs` and puts a
    validation MAE in `val_mse`; the global frame counts epochs and a validation MSE."""

    epoch: int
    epochs: int
    loss: float | None
    val_mse: float | None
    elapsed_s: float
    eta_s: float | None


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str  # queued, running, succeeded, failed, cancelled
    model_name: str | None
    model_version: int | None
    progress: Progress | None
    attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Job":
        progress = doc["progress"]
        return cls(id=doc["id"], kind=doc["kind"], status=doc["status"], model_name=doc["model"]["name"],
                   model_version=doc["model"]["version"], progress=Progress(**progress) if progress else None,
                   attempts=doc["attempts"], error=doc["error"], created_at=parse_time(doc["created_at"]),
                   started_at=parse_optional_time(doc["started_at"]),
                   finished_at=parse_optional_time(doc["finished_at"]))


@dataclass(frozen=True)
class Version:
    """One trained (or training) version of a model. `metrics` is set when training ends (see the API's docs for
    its fields: the backtest beside the baselines, validation error, steps run); `config` is the full ModelConfig."""

    name: str
    version: int
    status: str  # queued, training, ready, failed, cancelled
    config: dict[str, Any]
    channels: list[str]
    series: list[str]
    metrics: dict[str, Any] | None
    error: str | None
    created_at: datetime
    trained_at: datetime | None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Version":
        return cls(name=doc["name"], version=doc["version"], status=doc["status"], config=doc["config"],
                   channels=doc["channels"], series=doc["series"], metrics=doc["metrics"], error=doc["error"],
                   created_at=parse_time(doc["created_at"]), trained_at=parse_optional_time(doc["trained_at"]))


@dataclass(frozen=True)
class Training:
    """What starting a training answers: the new version (name, number, status) and the job that trains it."""

    name: str
    version: int
    status: str
    job: Job

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Training":
        model = doc["model"]
        return cls(name=model["name"], version=model["version"], status=model["status"],
                   job=Job.from_json(doc["job"]))


@dataclass(frozen=True)
class ChannelForecast:
    mean: list[float]
    std: list[float]
    quantiles: dict[str, list[float]]  # keyed by str(float(level)): "0.05", "0.5", ...


@dataclass(frozen=True)
class Forecast:
    """A forecast in request order: `t[i]` is `kind[i]` ("interpolation" or "extrapolation") and each channel's
    lists are indexed like `t`. `warnings` says in plain words when the answering version lost to a simple baseline
    on its backtest or stopped training at its time limit."""

    series: str | None
    model: str
    version: int
    t: list[datetime]
    kind: list[str]
    channels: dict[str, ChannelForecast]
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Forecast":
        return cls(series=doc.get("series"), model=doc["model"]["name"], version=doc["model"]["version"],
                   t=[parse_time(s) for s in doc["t"]], kind=doc["kind"],
                   channels={name: ChannelForecast(c["mean"], c["std"], c["quantiles"])
                             for name, c in doc["channels"].items()},
                   warnings=doc["warnings"])

    def records(self) -> list[dict[str, Any]]:
        """One dict per (time, channel), times in request order and channels in the model's order:
        {"t", "kind", "channel", "mean", "std", "q0.05", ...}, a "q<level>" key per quantile."""
        out = []
        for i, (t, kind) in enumerate(zip(self.t, self.kind, strict=True)):
            for name, c in self.channels.items():
                row = {"t": t, "kind": kind, "channel": name, "mean": c.mean[i], "std": c.std[i]}
                row.update({f"q{level}": values[i] for level, values in c.quantiles.items()})
                out.append(row)
        return out

    def to_frame(self) -> Any:
        """`records()` as a pandas DataFrame (columns t, kind, channel, mean, std, q<level>...; t in UTC).
        Needs pandas."""
        from latentcast._frames import forecast_frame

        return forecast_frame(self)

"""Every error the model library raises, in one place.

    ModelError                  base class: catch this to catch them all
    ├── ConfigError             a ModelConfig field is unknown or has a bad value (also a ValueError); `.field`
    ├── InputError              a Sequence, context or query has the wrong shape, order or content (also a ValueError)
    │   └── OutOfRangeError     a query time lies outside [context start, context end + horizon]; `.lower`/`.upper`
    ├── SolverError             the ODE solver gave up (step size underflow, too many steps, non-finite state)
    ├── NonFiniteLossError      training produced a NaN/inf loss; `.epoch`
    ├── TrainingCancelled       `should_stop()` asked training to stop; `.epoch`
    └── ArtifactError           a saved model cannot be read (not safetensors, wrong format version, missing keys)

Each pickles with its attributes, so an error raised in a child process (the service solves forecasts in one)
reaches the parent whole.
"""

from __future__ import annotations

__all__ = [
    "ModelError",
    "ConfigError",
    "InputError",
    "OutOfRangeError",
    "SolverError",
    "NonFiniteLossError",
    "TrainingCancelled",
    "ArtifactError",
]


class ModelError(Exception):
    """Base class of every error raised by `model`."""


class ConfigError(ModelError, ValueError):
    """A configuration field is unknown or invalid; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str]]:
        return type(self), (self.field, self.reason)


class InputError(ModelError, ValueError):
    """Input data (sequence, context, query times) is malformed; the message names the shapes or values."""


class OutOfRangeError(InputError):
    """Query times outside what the model may answer; `lower`/`upper` are the limits in seconds."""

    def __init__(self, message: str, lower: float, upper: float) -> None:
        super().__init__(message)
        self.lower = lower
        self.upper = upper

    # picklable (forecasts are solved in child processes): args are not just (message,)
    def __reduce__(self) -> tuple[type[OutOfRangeError], tuple[str, float, float]]:
        return type(self), (self.args[0], self.lower, self.upper)


class SolverError(ModelError):
    """The ODE solver failed; the message carries the solver's reason and a hint."""


class NonFiniteLossError(ModelError):
    """The training loss became NaN or infinite at `epoch` (1-based)."""

    def __init__(self, message: str, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch

    def __reduce__(self) -> tuple[type[NonFiniteLossError], tuple[str, int]]:
        return type(self), (self.args[0], self.epoch)


class TrainingCancelled(ModelError):
    """`should_stop()` returned true; training stopped during `epoch` (1-based)."""

    def __init__(self, message: str, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch

    def __reduce__(self) -> tuple[type[TrainingCancelled], tuple[str, int]]:
        return type(self), (self.args[0], self.epoch)


class ArtifactError(ModelError):
    """A serialized model could not be read."""

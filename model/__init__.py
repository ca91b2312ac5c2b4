"""latentcast's latent ODE library: fit a model on irregularly sampled series, forecast with uncertainty.

    from model import Sequence, ModelConfig, fit, forecast, save, load

Times are float seconds (any origin) everywhere in this public API.
"""

from model.config import ModelConfig
from model.data import Sequence
from model.errors import (
    ArtifactError,
    ConfigError,
    InputError,
    ModelError,
    NonFiniteLossError,
    OutOfRangeError,
    SolverError,
    TrainingCancelled,
)
from model.fitted import FittedModel
from model.io import ArtifactHeader, __version__, from_bytes, header_length, load, read_header, save, to_bytes
from model.predict import Forecast, forecast, forecast_batch
from model.train import fit

__all__ = [
    "ArtifactError",
    "ArtifactHeader",
    "ConfigError",
    "FittedModel",
    "Forecast",
    "InputError",
    "ModelConfig",
    "ModelError",
    "NonFiniteLossError",
    "OutOfRangeError",
    "Sequence",
    "SolverError",
    "TrainingCancelled",
    "__version__",
    "fit",
    "forecast",
    "forecast_batch",
    "from_bytes",
    "header_length",
    "load",
    "read_header",
    "save",
    "to_bytes",
]

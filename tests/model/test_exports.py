import model

API = ["Sequence", "ModelConfig", "FittedModel", "Forecast", "fit", "forecast", "forecast_batch", "save", "load",
       "to_bytes", "from_bytes", "ModelError", "ConfigError", "InputError", "OutOfRangeError", "SolverError",
       "NonFiniteLossError", "TrainingCancelled"]


def test_public_names_exported():
    assert set(API) <= set(model.__all__)
    for name in model.__all__:
        assert getattr(model, name) is not None


def test_error_hierarchy():
    assert issubclass(model.OutOfRangeError, model.InputError)
    for name in ["ConfigError", "InputError", "SolverError", "NonFiniteLossError", "TrainingCancelled"]:
        assert issubclass(getattr(model, name), model.ModelError)
    assert issubclass(model.ConfigError, ValueError) and issubclass(model.InputError, ValueError)

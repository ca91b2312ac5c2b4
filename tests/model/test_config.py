import json

import pytest

from model import ConfigError, ModelConfig


def test_defaults_round_trip_through_json():
    config = ModelConfig()
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_unknown_field_is_named():
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict({"latent_dim": 4, "latnet_dim": 5})
    assert info.value.field == "latnet_dim"
    assert "unknown field" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("rtol", -1.0, "> 0"),
        ("encoder", "lstm", "'gru' or 'ode_rnn'"),
        ("gradient", "finite_differences", "'adjoint' or 'backprop'"),
        ("lr_schedule", "step", "'decay', 'cosine' or 'exponential'"),
        ("solver", "leapfrog", "one of"),
        ("epochs", True, "an integer"),
        ("latent_dim", 2.5, "an integer"),
        ("context_fraction", 1.5, "(0, 1]"),
        ("window", float("nan"), "finite"),
        ("device", "tpu", "'auto'"),
        ("seminorm", "yes", "a boolean"),
        ("atol", None, "null"),
    ],
)
def test_bad_value_names_field_and_reason(field, value, reason):
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict({field: value})
    assert info.value.field == field
    assert reason in str(info.value)


def test_json_integers_accepted_for_float_fields():
    assert ModelConfig.from_dict({"rtol": 1, "window": 3600}).window == 3600


def test_frozen():
    with pytest.raises(AttributeError):
        ModelConfig().epochs = 3  # type: ignore[misc]

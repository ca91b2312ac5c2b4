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


DAY = 86_400.0
CENTURY = 100 * 365.25 * DAY


@pytest.mark.parametrize(
    ("field", "high", "too_high"),
    [
        ("latent_dim", 256, 257),
        ("hidden_dim", 1024, 1025),
        ("units", 1024, 1025),
        ("dynamics_layers", 16, 17),
        ("decoder_layers", 16, 17),
        ("max_steps", 100_000, 100_001),
        ("iwae_samples", 64, 65),
        ("epochs", 100_000, 100_001),
        ("batch_size", 4096, 4097),
        ("train_steps", 1_000_000, 1_000_001),
        ("time_limit", 7 * DAY, 7 * DAY + 1),
        ("horizon", CENTURY, CENTURY * 1.001),
        ("context", CENTURY, CENTURY * 1.001),
        ("window", CENTURY, CENTURY * 1.001),
        ("seed", 2**63 - 1, 2**63),
        ("seed", 2**63 - 1, 2**70),
        ("latent_dim", 256, 10**400),
    ],
)
def test_upper_bounds_name_the_field_and_the_limit(field, high, too_high):
    assert getattr(ModelConfig.from_dict({field: high}), field) == high
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict({field: too_high})
    assert info.value.field == field
    assert "must be at most" in info.value.reason
    assert len(str(info.value)) < 200  # a huge number is shown shortened


def test_seasons_are_bounded_like_durations():
    assert ModelConfig(seasons=[DAY, CENTURY]).seasons == (DAY, CENTURY)
    with pytest.raises(ConfigError, match="at most 3 positive periods") as info:
        ModelConfig(seasons=[DAY, CENTURY * 2])
    assert info.value.field == "seasons"


@pytest.mark.parametrize(("field", "value"), [("seed", -1), ("rtol", 10**400), ("window", -(10**400)),
                                             ("seasons", [10**400])])
def test_out_of_range_numbers_are_config_errors(field, value):
    with pytest.raises(ConfigError) as info:
        ModelConfig.from_dict({field: value})
    assert info.value.field == field
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:64", "mps"])
def test_device_names_accepted(device):
    assert ModelConfig(device=device).device == device


@pytest.mark.parametrize("device", ["cuda:65", "cuda:99", "cuda:-1", "cuda:", "cuda:1:2", "cudaX", "cuda:01x", "CPU",
                                    "cpu:0", "mps:1", "", "cuda:٣"])
def test_device_names_refused(device):
    with pytest.raises(ConfigError, match="'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'") as info:
        ModelConfig(device=device)
    assert info.value.field == "device"

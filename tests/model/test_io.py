import json
import struct

import numpy as np
import pytest
from model_fixtures import sine_sequences

from model import ArtifactError, ArtifactHeader, forecast, from_bytes, header_length, load, read_header, save, to_bytes


def test_save_load_gives_identical_forecasts(fitted, tmp_path):
    path = tmp_path / "m.safetensors"
    save(fitted, path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left behind
    loaded = load(path)
    ctx = sine_sequences(1, 9, seed=3)[0]
    at = np.append(ctx.times, ctx.times[-1] + fitted.horizon)
    a = forecast(fitted, ctx, at, samples=30, seed=5)
    b = forecast(loaded, ctx, at, samples=30, seed=5)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.quantiles, b.quantiles)
    assert loaded.config == fitted.config
    assert loaded.channels == fitted.channels
    assert loaded.horizon == fitted.horizon
    assert loaded.context_seconds == fitted.context_seconds
    assert loaded.history == fitted.history
    np.testing.assert_array_equal(loaded.normaliser.mean, fitted.normaliser.mean)
    assert loaded.normaliser.time_scale == fitted.normaliser.time_scale


def test_bytes_are_safetensors_with_json_metadata(fitted):
    data = to_bytes(fitted)
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    meta = json.loads(header["__metadata__"]["latentcast"])
    assert meta["channels"] == ["a", "b"]
    assert meta["config"] == fitted.config.to_dict()
    assert "version" in meta
    assert from_bytes(data).channels == fitted.channels


def test_the_header_alone_gives_channels_horizon_and_context(fitted, monkeypatch):
    data = to_bytes(fitted)
    head = data[:header_length(data[:8])]
    assert len(head) < len(data)
    monkeypatch.setattr("safetensors.torch.load", None)  # no tensor is read
    for blob in (data, head):
        assert read_header(blob) == ArtifactHeader(fitted.channels, fitted.horizon, fitted.context_seconds)
    with pytest.raises(ArtifactError):
        read_header(head[:-1])
    with pytest.raises(ArtifactError):
        header_length(head[:7])


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\xff" * 64, struct.pack("<Q", 2) + b"{}",
                                  struct.pack("<Q", 2) + b"[]", struct.pack("<Q", 1) + b"7"])
def test_garbage_is_an_artifact_error(data):
    with pytest.raises(ArtifactError):
        from_bytes(data)
    with pytest.raises(ArtifactError):
        read_header(data)

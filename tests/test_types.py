"""mypy --strict is clean over model/ and service/ with the settings in pyproject.toml ([tool.mypy])."""

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_finds_nothing(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it is in the dev extra: pip install -e '.[dev]')")
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert settings["strict"] is True and settings["files"] == ["model", "service"]
    assert "ignore-without-code" in settings["enable_error_code"]  # every type: ignore names what it hides
    # a fresh cache each run (a cold run over model/ and service/ takes ~30 s): no stale result, nothing left in the
    # checkout
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy_cache")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, "mypy --strict over model/ and service/:\n" + done.stdout[-4000:] + done.stderr[-2000:]

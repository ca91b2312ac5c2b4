"""The built wheel carries the files the service reads from its packages: the dashboard's (service/static/) and
alembic's script template, and the client package. Built the way the Dockerfile installs it: from pyproject.toml,
README.md and the four packages alone, without build isolation (so no index is needed)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_the_wheel_ships_the_dashboard(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("service", "model", "migrations", "latentcast"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "--wheel-dir", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("latentcast-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        static = ROOT / "service" / "static"
        expected = {f"service/static/{p.relative_to(static).as_posix()}" for p in static.rglob("*") if p.is_file()}
        assert {"service/static/index.html", "service/static/dashboard.js", "service/static/sse.js",
                "service/static/vendor/uPlot.iife.min.js", "service/static/vendor/uPlot.LICENSE"} <= expected
        assert expected <= names, sorted(expected - names)
        assert archive.read("service/static/dashboard.js") == (static / "dashboard.js").read_bytes()
        assert {"migrations/script.py.mako", "service/api/dashboard.py"} <= names
        assert {"latentcast/__init__.py", "latentcast/cli_client.py"} <= names  # `latentcast`'s client commands

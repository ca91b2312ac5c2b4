"""mypy over model/ and service/, started in the background as soon as a test run knows it holds the type test.

A cold mypy run takes about 30 s of one core. Started when collection ends (tests/conftest.py), it checks beside
the rest of the suite, and tests/test_types.py only waits for its verdict; a run that does not select the type
test starts nothing. Each run has a fresh cache in a temporary folder: no stale result, nothing left in the
checkout.
"""

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/test_types.py::test_mypy_finds_nothing"
TIMEOUT_S = 600


@dataclass
class Check:
    process: subprocess.Popen[str]
    cache: Path

    def verdict(self) -> tuple[int, str, str]:
        """(exit status, stdout, stderr), once mypy has finished."""
        out, err = self.process.communicate(timeout=TIMEOUT_S)
        return self.process.returncode, out, err

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
        shutil.rmtree(self.cache, ignore_errors=True)


KEY = pytest.StashKey[Check]()


def start(config: pytest.Config) -> None:
    """Start mypy with the settings in pyproject.toml ([tool.mypy]) and keep it in the run's stash."""
    cache = Path(tempfile.mkdtemp(prefix="mypy-cache-"))
    process = subprocess.Popen([sys.executable, "-m", "mypy", "--cache-dir", str(cache)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    config.stash[KEY] = Check(process, cache)

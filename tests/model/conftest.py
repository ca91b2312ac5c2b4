"""A tiny trained model shared by the model tests (fixed seeds, seconds of CPU)."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import TINY, sine_sequences

from model import fit


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # tiny MLPs gain nothing from threads, and the CI machine is shared
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fitted():
    return fit(sine_sequences(16, 12, seed=0), TINY)

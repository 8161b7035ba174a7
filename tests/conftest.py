import numpy as np
import pytest
import torch


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(1234)


TOLERANCE = {torch.complex128: 1e-10, torch.complex64: 1e-5}
REAL = {torch.complex128: torch.float64, torch.complex64: torch.float32}

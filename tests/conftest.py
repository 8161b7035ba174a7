import logging
import sys
import warnings

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


@pytest.fixture
def in_process(monkeypatch):
    """qtrain's command line (cli.main) run in this process with sys.argv patched: -> its exit status.
    Hydra's logging setup is undone afterwards."""
    from qtrain import cli

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def main(args: list[str]) -> int:
        monkeypatch.setattr(sys, "argv", ["qtrain", *args])
        with pytest.raises(SystemExit) as stop, warnings.catch_warnings():
            cli.main()
        return stop.value.code

    yield main
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)

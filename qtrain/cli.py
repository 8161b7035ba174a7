"""The `qtrain` command: a thin Hydra entry point over `qtrain.tasks`.

    qtrain                          # the default experiment
    qtrain experiment=demo steps=50 # pick an experiment, override its keys

Every run writes into Hydra's run directory (default logs/<experiment>/<time>).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

log = logging.getLogger(__name__)

#: experiment name -> module in qtrain.tasks with `run(cfg, out_dir)`.
TASKS = {
    "barren_plateau": "qtrain.tasks.barren_plateau",
    "deceptiveness": "qtrain.tasks.deceptiveness",
    "demo": "qtrain.tasks.demo",
}


def config_dir() -> str:
    """conf/ of a source checkout (editable install), else the copy packaged
    inside qtrain (wheel install)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"qtrain's conf/ directory was found neither beside nor inside {here}")


def run(cfg: DictConfig, out_dir: Path) -> Any:
    """Run the experiment `cfg.task` writing into `out_dir`; returns its results."""
    if cfg.task not in TASKS:
        raise ValueError(f"unknown task {cfg.task!r}; known: {sorted(TASKS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return importlib.import_module(TASKS[cfg.task]).run(cfg, out_dir)


@hydra.main(version_base=None, config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> Any:
    return run(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()

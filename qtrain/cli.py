"""The `qtrain` command: a thin Hydra entry point over `qtrain.tasks`.

    qtrain                          # the default experiment
    qtrain experiment=demo steps=50 # pick an experiment, override its keys

Every run writes into Hydra's run directory (default logs/<experiment>/<time>).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from qtrain.errors import UsageError

log = logging.getLogger(__name__)

#: experiment name -> module in qtrain.tasks with `run(cfg, out_dir)`.
TASKS = {
    "barren_plateau": "qtrain.tasks.barren_plateau",
    "deceptiveness": "qtrain.tasks.deceptiveness",
    "demo": "qtrain.tasks.demo",
    "lr_grid": "qtrain.tasks.lr_grid",
    "hybrid_digits": "qtrain.tasks.hybrid_digits",
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
    """Run the experiment `cfg.task` writing into `out_dir`; returns its results.

    The task's `plan` checks every key first: whatever it refuses is bad input
    (a `UsageError`), raised before any work or output."""
    if cfg.task not in TASKS:
        raise UsageError(f"unknown task {cfg.task!r}; known: {sorted(TASKS)}")
    task = importlib.import_module(TASKS[cfg.task])
    try:
        task.plan(cfg)
    except (ValueError, TypeError, MemoryError) as e:
        raise UsageError(str(e)) from e
    out_dir.mkdir(parents=True, exist_ok=True)
    return task.run(cfg, out_dir)


@hydra.main(version_base=None, config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> Any:
    logging.captureWarnings(True)  # a library warning (a redundant parameter, say) reaches cli.log too
    try:
        return run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except KeyboardInterrupt:
        # the task has already said what it kept and how to resume
        _to_log_file(logging.WARNING, "interrupted by the user")
        raise SystemExit(130) from None
    except UsageError as e:
        _to_log_file(logging.ERROR, f"error: {e}")
        print(f"qtrain: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:
        log.exception("the run failed")  # a bug, not bad input: the traceback goes to cli.log and the console
        raise


def _to_log_file(level: int, message: str) -> None:
    """Write to the run's cli.log only (the console gets its own single line);
    an error's traceback goes there too, for the case it was a bug after all."""
    record = log.makeRecord(log.name, level, __file__, 0, message, None, sys.exc_info() if level >= logging.ERROR else None)  # the file keeps the traceback
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


if __name__ == "__main__":
    main()

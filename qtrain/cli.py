"""The `qtrain` command: a thin Hydra entry point over `qtrain._tasks`.

    qtrain                          # the default experiment
    qtrain experiment=demo steps=50 # pick an experiment, override its keys

Every run writes into Hydra's run directory (default logs/<experiment>/<time>).

Bad input, whoever finds it, ends the command the same way: one line
`qtrain: error: <what, naming the key>` on stderr, exit status 2, no traceback
(the run's cli.log keeps it where a run directory exists), and nothing started
first. Hydra finds unknown keys, wrong types and unknown configs while it
composes (each experiment has a typed schema, qtrain/_tasks/schema.py); the
task's `plan` finds bad ranges and combinations. HYDRA_FULL_ERROR=1 in the
environment keeps Hydra's own traceback instead, for debugging a config.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

import qtrain._tasks.schema  # noqa: F401  (stores the experiments' schemas in Hydra's ConfigStore)
from qtrain._tasks import checks
from qtrain.errors import UsageError

__all__ = ["config_dir", "config_error_line", "main", "resolve_progress", "run"]

log = logging.getLogger(__name__)

#: experiment name -> module in qtrain._tasks with `plan(cfg)` and `run(cfg, out_dir, planned)`.
TASKS = {
    "barren_plateau": "qtrain._tasks.barren_plateau",
    "cost_locality": "qtrain._tasks.cost_locality",
    "deceptiveness": "qtrain._tasks.deceptiveness",
    "demo": "qtrain._tasks.demo",
    "lr_grid": "qtrain._tasks.lr_grid",
    "remedies": "qtrain._tasks.remedies",
    "hybrid_digits": "qtrain._tasks.hybrid_digits",
    "noisy_plateau": "qtrain._tasks.noisy_plateau",
    "predict": "qtrain._tasks.predict",
}


#: the experiments that take the config's `noise` block; the others refuse a nonzero one by name.
NOISY_TASKS = frozenset({"barren_plateau", "lr_grid", "demo", "hybrid_digits"})
#: why an experiment outside NOISY_TASKS takes no noise block (the refusal's words)
NOISELESS_BECAUSE = {
    "noisy_plateau": "its depolarizing rates are its own key, depolarizing=[...]",
    "deceptiveness": "its landscapes are noiseless",
    "predict": "the Lie-algebraic prediction is of noiseless circuits",
    "cost_locality": "it measures noiseless gradients",
    "remedies": "it compares the remedies in the noiseless plateau",
}
#: the experiments that train one schedule, and so take `trainer.layerwise`; the others refuse a non-null one by name
#: (remedies compares layerwise training with the rest through its own `layerwise` key).
LAYERWISE_TASKS = frozenset({"lr_grid"})


def config_dir() -> str:
    """conf/ of a source checkout (editable install), else the copy packaged
    inside qtrain (wheel install)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "conf", here / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"qtrain's conf/ directory was found neither beside nor inside {here}")


def resolve_progress(value: bool | None) -> bool:
    """The one place `progress` is decided: null (the default) shows bars only when
    stderr is a terminal, so output redirected to a file is not flooded; true/false win."""
    return sys.stderr.isatty() if value is None else bool(value)


def run(cfg: DictConfig, out_dir: Path) -> Any:
    """Run the experiment `cfg.task` writing into `out_dir`; returns its results.

    The task's `plan` checks every key first, once: whatever it refuses is bad
    input (a `UsageError`), raised before any work or output."""
    if cfg.task not in TASKS:
        raise UsageError(f"task: unknown task {cfg.task!r}; known: {sorted(TASKS)}")
    task = importlib.import_module(TASKS[cfg.task])
    try:
        model, _ = checks.noise(cfg)
        if model is not None and cfg.task not in NOISY_TASKS:
            where = NOISELESS_BECAUSE.get(cfg.task, "it simulates noiseless circuits")
            raise ValueError(f"noise: the {cfg.task} experiment does not take noise ({where}); the experiments that do: {', '.join(sorted(NOISY_TASKS))}")
        if cfg.trainer.get("layerwise") is not None and cfg.task not in LAYERWISE_TASKS:
            why = ("it compares layerwise training with the other remedies through its own key, layerwise.steps_per_stage"
                   if cfg.task == "remedies" else "it trains nothing layer by layer")
            raise ValueError(f"trainer.layerwise: the {cfg.task} experiment does not take it ({why}); the experiments that do: "
                             f"{', '.join(sorted(LAYERWISE_TASKS))}")
        planned = task.plan(cfg)
    except (ConfigKeyError, ConfigAttributeError) as e:  # a key the task reads was deleted (~key)
        raise UsageError(f"{e.full_key}: the {cfg.task} experiment needs this key") from e
    except OmegaConfBaseException as e:  # a key left ??? or interpolated from nowhere
        raise UsageError(config_error_line(e)) from e
    except (ValueError, TypeError, MemoryError) as e:
        raise UsageError(str(e)) from e
    cfg = cfg.copy()  # the caller's config stays as given
    cfg.progress = resolve_progress(cfg.progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    return task.run(cfg, out_dir, planned)


def _task(cfg: DictConfig) -> Any:
    """Hydra's task function: one run of one experiment in Hydra's run directory."""
    logging.captureWarnings(True)  # a library warning (a redundant parameter, say) reaches cli.log too
    try:
        return run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except KeyboardInterrupt:
        # the task has already said what it kept and how to resume
        _to_log_file(logging.WARNING, "interrupted by the user")
        raise SystemExit(130) from None
    except UsageError as e:
        _to_log_file(logging.ERROR, f"error: {e}")
        _refuse(str(e))
    except Exception as e:
        log.exception("the run failed")  # a bug, not bad input: the traceback goes to cli.log and the console
        e.qtrain_task_failed = True  # type: ignore[attr-defined]  # main re-raises it rather than call it a config error
        raise


_hydra_main = hydra.main(version_base=None, config_path=config_dir(), config_name="config")(_task)


def main() -> None:
    """The `qtrain` console script: Hydra's own main, with its config errors turned into one line."""
    user_wants_traces = bool(os.environ.get("HYDRA_FULL_ERROR"))
    with _hydra_errors_raised():
        try:
            _hydra_main()
        except (HydraException, OmegaConfBaseException) as e:
            if user_wants_traces or getattr(e, "qtrain_task_failed", False):
                raise
            _refuse(config_error_line(e))


@contextmanager
def _hydra_errors_raised() -> Iterator[None]:
    """Hydra prints its own errors (several lines, exit 1) unless HYDRA_FULL_ERROR is
    set, in which case it raises them: set it while Hydra runs, so `main` gets them."""
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


def config_error_line(error: BaseException) -> str:
    """One line for an error Hydra or OmegaConf raised while composing the config,
    naming the key (or config group) as typed, with a hint where one helps."""
    if isinstance(error, OverrideParseException):
        return f"cannot read the override {error.override!r}: {_one_line(error.message)}"
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, name = error.missing_cfg_file.rpartition("/")
        known = f"; known: {', '.join(error.options)}" if error.options else ""
        return f"{group or 'config'}={name}: no such config{known}"
    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else error
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        if isinstance(cause, MissingMandatoryValue):
            return f"{cause.full_key}: needs a value"
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
            return f"{cause.full_key}: unknown key{_did_you_mean(cause)}"
        return f"{cause.full_key}: {_one_line(cause.msg or str(cause))}"
    return _one_line(str(error))


def _did_you_mean(error: OmegaConfBaseException) -> str:
    """Close names among the keys beside the unknown one."""
    parent = error.parent_node
    if parent is None or error.key is None or not OmegaConf.is_dict(parent):
        return ""
    prefix = str(error.full_key)[: -len(str(error.key))]  # "trainer." for trainer.devicez: suggest full keys, as typed
    close = difflib.get_close_matches(str(error.key), [str(k) for k in parent.keys()], n=2)
    if close:
        return f"; did you mean {' or '.join(prefix + k for k in close)}?"
    return f"; known keys here: {', '.join(prefix + str(k) for k in parent.keys())}"


def _one_line(text: str) -> str:
    """Hydra's and OmegaConf's messages span lines (full_key, object_type): keep the first
    line and any hint ("To append to your config use +key=...")."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    hints = [line for line in lines[1:] if not line.startswith(("full_key:", "object_type", "reference_type"))]
    return "; ".join(lines[:1] + hints)


def _refuse(message: str) -> NoReturn:
    line = "; ".join(part.strip() for part in message.splitlines() if part.strip())  # one line, whatever the message
    print(f"qtrain: error: {line}", file=sys.stderr)
    raise SystemExit(2)


def _to_log_file(level: int, message: str) -> None:
    """Write to the run's cli.log only (the console gets its own single line);
    an error's traceback goes there too, for the case it was a bug after all."""
    trace = sys.exc_info() if level >= logging.ERROR else None  # the file keeps the traceback
    record = log.makeRecord(log.name, level, __file__, 0, message, (), trace)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


if __name__ == "__main__":
    main()
